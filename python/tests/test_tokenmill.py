"""pytest suite of the tokenmill Python package: ids and decoding equal to
sentencepiece's, batches equal to single calls whatever the thread count,
vocabulary accessors, errors, and the GIL released while a batch encodes.
Models are trained by the tokenmill binary (TKM_BIN, else `tokenmill` on
PATH); sentencepiece comparisons skip without PyPI sentencepiece."""
import os
import shutil
import subprocess
import threading
import time

import pytest

import tokenmill

try:
    import numpy as np
except ImportError:
    np = None
try:
    import sentencepiece as spm
except ImportError:
    spm = None

BIN = os.environ.get("TKM_BIN") or shutil.which("tokenmill")
SRC = os.environ.get("TKM_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))

LINES = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello,   world!  It's 2024-11-22 and 12345 apples cost $3.50.",
    "東京は日本の首都です。今日は良い天気でした。",
    "  leading and trailing spaces  ",
    "",
    "emoji 😀🎉 and ligature ﬁ Ω",
    "<s> </s> <unk> <sep> typed in text",
    "tab\tand\\backslash \"quotes\"",
]


def corpus(n=400):
    out = []
    for i in range(n):
        out.append("line %d: the quick brown fox <sep> jumps over the lazy dog %d times; naïve café" % (i, i * 7))
        out.append("東京は日本の首都です。今日は%d月の良い天気でした。" % (i % 12 + 1))
    return out


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    if not BIN:
        pytest.skip("tokenmill binary not found (set TKM_BIN)")
    d = tmp_path_factory.mktemp("models")
    txt = d / "c.txt"
    txt.write_text("\n".join(corpus()) + "\n", encoding="utf-8")
    out = {}
    for name, opts in (("bpe", ["--byte-fallback", "--user-defined-symbols", "<sep>", "--pad-id", "3"]),
                       ("dummy", ["--add-dummy-prefix", "--remove-extra-whitespaces"]),
                       ("unigram", ["--model-type", "unigram"])):
        m = d / (name + ".model")
        subprocess.run([BIN, "train", "-q", "-t", "1", "--vocab-size", "500", "--hard-vocab-limit=false",
                        "-o", str(m)] + opts + [str(txt)], check=True)
        out[name] = str(m)
    return out


def all_lines():
    return LINES + corpus(50)


@pytest.mark.parametrize("name", ["bpe", "dummy", "unigram"])
def test_ids_and_decode_equal_sentencepiece(models, name):
    if spm is None:
        pytest.skip("sentencepiece not installed")
    sp = spm.SentencePieceProcessor(model_file=models[name])
    tok = tokenmill.Tokenizer(models[name])
    assert (tok.vocab_size, tok.bos_id, tok.eos_id, tok.unk_id, tok.pad_id) == \
        (sp.get_piece_size(), sp.bos_id(), sp.eos_id(), sp.unk_id(), sp.pad_id())
    assert len(tok) == sp.get_piece_size()
    for s in all_lines():
        ids = tok.encode(s)
        assert ids == sp.encode(s), s
        assert tok.decode(ids) == sp.decode(ids), s
        assert tok.encode(s.encode("utf-8")) == ids


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_batch_equals_single(models, threads):
    tok = tokenmill.Tokenizer(models["bpe"])
    lines = all_lines() * 7  # > several chunks of 64 lines
    single = [tok.encode(s) for s in lines]
    got = tok.encode(lines, threads=threads)
    assert len(got) == len(lines)
    if np is not None:
        assert all(isinstance(a, np.ndarray) and a.dtype == np.uint16 for a in got)
    assert [list(map(int, a)) for a in got] == single
    assert tok.encode(lines, threads=threads, as_numpy=False) == single
    assert tok.encode(tuple(lines), threads=threads, as_numpy=False) == single
    assert tok.encode(iter(lines), threads=threads, as_numpy=False) == single
    assert tok.encode([], threads=threads) == []


@pytest.mark.skipif(np is None, reason="numpy not installed")
def test_flat_and_decode_arrays(models):
    tok = tokenmill.Tokenizer(models["bpe"])
    lines = all_lines()
    ids, offs = tok.encode_flat(lines, threads=2)
    assert offs[0] == 0 and offs[-1] == len(ids) and len(offs) == len(lines) + 1
    for i, s in enumerate(lines):
        a = ids[offs[i]:offs[i + 1]]
        assert a.tolist() == tok.encode(s)
        assert tok.decode(a) == tok.decode(tok.encode(s))
    batch = tok.encode(lines[:3])
    assert tok.decode(batch) == [tok.decode(b) for b in batch]


def test_vocabulary_accessors(models):
    tok = tokenmill.Tokenizer(models["bpe"])
    for i in range(tok.vocab_size):
        p = tok.id_to_piece(i)
        assert tok.piece_to_id(p) == i
        assert tok.id_to_bytes(i) == p.encode("utf-8", "surrogateescape")
    assert tok.piece_to_id("no such piece at all") is None
    assert tok.piece_type(tok.unk_id) == tokenmill.PIECE_UNKNOWN
    assert tok.piece_type(tok.bos_id) == tokenmill.PIECE_CONTROL
    assert tok.piece_type(tok.piece_to_id("<sep>")) == tokenmill.PIECE_USER_DEFINED
    assert tok.piece_type(tok.piece_to_id("<0x41>")) == tokenmill.PIECE_BYTE
    if spm is not None:
        sp = spm.SentencePieceProcessor(model_file=models["bpe"])
        assert [tok.score(i) for i in range(tok.vocab_size)] == \
            pytest.approx([sp.get_score(i) for i in range(tok.vocab_size)], abs=0)


def test_tokenizer_json_loads(models, tmp_path):
    j = tmp_path / "tokenizer.json"
    subprocess.run([BIN, "export", "--hf-json", "-m", models["bpe"], "-o", str(j)], check=True)
    a, b = tokenmill.Tokenizer(models["bpe"]), tokenmill.Tokenizer(j)
    # HF matches special-token text ("<s>" typed in the input); sentencepiece does not
    for s in all_lines():
        if "<s>" not in s:
            assert a.encode(s) == b.encode(s), s
    assert a.encode("<s>") != b.encode("<s>") == [a.bos_id]


def test_errors(models, tmp_path):
    with pytest.raises(OSError, match="no-such.model"):
        tokenmill.Tokenizer(tmp_path / "no-such.model")
    bad = tmp_path / "bad.model"
    bad.write_bytes(open(models["bpe"], "rb").read()[:100])
    with pytest.raises(ValueError, match="bad.model"):
        tokenmill.Tokenizer(bad)
    tok = tokenmill.Tokenizer(models["bpe"])
    with pytest.raises(IndexError):
        tok.decode([0, tok.vocab_size])
    with pytest.raises(IndexError):
        tok.decode([-1])
    with pytest.raises(IndexError):
        tok.id_to_piece(tok.vocab_size)
    with pytest.raises(TypeError):
        tok.encode(["ok", 3])
    with pytest.raises(TypeError):
        tok.encode(3.5)


def test_gil_released_during_batch(models):
    """A Python thread keeps running while a batch encodes: it records
    timestamps, some of which must fall in the middle of the encode call."""
    tok = tokenmill.Tokenizer(models["bpe"])
    lines = corpus(20000)
    stamps, stop = [], threading.Event()

    def spin():
        while not stop.is_set():
            stamps.append(time.perf_counter())

    th = threading.Thread(target=spin)
    th.start()
    time.sleep(0.01)
    t0 = time.perf_counter()
    tok._m.encode_batch(lines, 1, 4)  # the C call alone: no Python-level list building inside [t0, t1]
    t1 = time.perf_counter()
    stop.set()
    th.join()
    # the middle half of the call is encoding (string conversion and the copy are short)
    lo, hi = t0 + (t1 - t0) * 0.25, t0 + (t1 - t0) * 0.75
    assert t1 - t0 > 0.02, "batch too short to tell"
    assert sum(lo < s < hi for s in stamps) > 100


def test_train_matches_cli(models, tmp_path):
    """train() with sentencepiece's keyword names gives the pieces and scores
    the CLI gives for the same options and input, from files or a generator."""
    txt = tmp_path / "c.txt"
    txt.write_text("\n".join(corpus()) + "\n", encoding="utf-8")
    tok = tokenmill.train(input=str(txt), model_prefix=str(tmp_path / "py"), vocab_size=500, hard_vocab_limit=False,
                          byte_fallback=True, user_defined_symbols="<sep>", pad_id=3, num_threads=2,
                          input_sentence_size=1000000, shuffle_input_sentence=True)
    subprocess.run([BIN, "train", "-q", "-t", "1", "--vocab-size", "500", "--hard-vocab-limit=false",
                    "--byte-fallback", "--user-defined-symbols", "<sep>", "--pad-id", "3",
                    "-o", str(tmp_path / "cli.model"), str(txt)], check=True)
    cli = tokenmill.Tokenizer(tmp_path / "cli.model")
    py = tokenmill.Tokenizer(tmp_path / "py.model")
    assert py.vocab_size == cli.vocab_size == tok.vocab_size
    assert [py.id_to_piece(i) for i in range(py.vocab_size)] == [cli.id_to_piece(i) for i in range(cli.vocab_size)]
    assert [py.score(i) for i in range(py.vocab_size)] == [cli.score(i) for i in range(cli.vocab_size)]
    for s in all_lines():
        assert tok.encode(s) == cli.encode(s)
    # the same text through sentence_iterator (a generator), several lines per item
    it = tokenmill.train(sentence_iterator=("\n".join(corpus()[i:i + 3]) for i in range(0, len(corpus()), 3)),
                         vocab_size=500, hard_vocab_limit=False, byte_fallback=True, user_defined_symbols=["<sep>"],
                         pad_id=3)
    assert [it.id_to_piece(i) for i in range(it.vocab_size)] == [cli.id_to_piece(i) for i in range(cli.vocab_size)]
    import io
    buf = io.BytesIO()
    tokenmill.train(sentence_iterator=corpus(), vocab_size=300, hard_vocab_limit=False, model_writer=buf)
    assert tokenmill.Tokenizer(_write(tmp_path / "w.model", buf.getvalue())).vocab_size == 300
    if spm is not None:
        sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "py.model"))
        for s in all_lines():
            assert sp.encode(s) == tok.encode(s)
    with pytest.raises(TypeError, match="no_such_option"):
        tokenmill.train(sentence_iterator=corpus(), no_such_option=1)
    with pytest.raises(ValueError, match="vocab"):
        tokenmill.train(sentence_iterator=["a b"], vocab_size=5000)


def test_train_differential_privacy():
    """The differential privacy options reach the trainer (Unigram only):
    the same seed gives the same model, another seed another one, clipping
    alone drops rare pre-tokens, and BPE refuses them."""
    lines = corpus()
    kw = dict(model_type="unigram", vocab_size=300, hard_vocab_limit=False, num_threads=1)
    plain = tokenmill.train(sentence_iterator=lines, **kw).serialized_model_proto()
    a = tokenmill.train(sentence_iterator=lines, enable_differential_privacy=True,
                        differential_privacy_noise_level=3.0, random_seed=7, **kw).serialized_model_proto()
    b = tokenmill.train(sentence_iterator=lines, enable_differential_privacy=True,
                        differential_privacy_noise_level=3.0, random_seed=7, **kw).serialized_model_proto()
    c = tokenmill.train(sentence_iterator=lines, enable_differential_privacy=True,
                        differential_privacy_noise_level=3.0, random_seed=8, **kw).serialized_model_proto()
    assert a == b
    assert a != c and a != plain
    clipped = tokenmill.train(sentence_iterator=lines, enable_differential_privacy=True,
                              differential_privacy_clipping_threshold=3, **kw)
    assert clipped.serialized_model_proto() != plain
    with pytest.raises(ValueError, match="differential privacy left no input"):
        tokenmill.train(sentence_iterator=lines, enable_differential_privacy=True,
                        differential_privacy_clipping_threshold=1000000, **kw)
    with pytest.raises(Exception):
        tokenmill.train(sentence_iterator=lines, vocab_size=300, hard_vocab_limit=False,
                        enable_differential_privacy=True, differential_privacy_noise_level=1.0)


def _write(path, data):
    path.write_bytes(data)
    return path


def test_tiktoken_file(tmp_path):
    """A tiktoken rank file: every byte, then "ab" and " c"; ranks are ids."""
    import base64
    toks = [bytes([i]) for i in range(256)] + [b"ab", b" c"]
    p = tmp_path / "tiny.tiktoken"
    p.write_text("".join("%s %d\n" % (base64.b64encode(t).decode(), i) for i, t in enumerate(toks)))
    tok = tokenmill.Tokenizer(p, tiktoken_pattern=tokenmill.TIKTOKEN_R50K)
    assert tok.vocab_size == 258
    assert tok.encode("abab c") == [256, 256, 257]
    assert tok.id_to_bytes(257) == b" c"
    assert tok.decode([256, 257]) == "ab c"
    with pytest.raises(ValueError):  # no such pattern
        tokenmill.Tokenizer(_write(tmp_path / "noname.txt", p.read_bytes()), tiktoken_pattern=42)
