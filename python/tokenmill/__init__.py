"""tokenmill - Python bindings of libtokenmill (the C library; no second
implementation here): load a sentencepiece .model, a Hugging Face
tokenizer.json or a tiktoken file and encode with the ids libsentencepiece
(or HF tokenizers / tiktoken) gives.

    >>> import tokenmill
    >>> tok = tokenmill.Tokenizer("m.model")
    >>> tok.encode("Hello world")            # list[int]
    >>> tok.encode(lines, threads=8)         # list of numpy arrays (uint16/uint32)
    >>> tok.decode(ids)

Batches are encoded by C threads with the GIL released.
"""
import os as _os

from ._tokenmill import TKM_VERSION as __version__
from ._tokenmill import Model as _Model
from ._tokenmill import train as _train

try:
    import numpy as _np
except ImportError:  # numpy is optional: batches come back as lists
    _np = None

__all__ = ["Tokenizer", "train", "PIECE_NORMAL", "PIECE_UNKNOWN", "PIECE_CONTROL", "PIECE_USER_DEFINED", "PIECE_UNUSED",
           "PIECE_BYTE", "TIKTOKEN_R50K", "TIKTOKEN_CL100K", "TIKTOKEN_O200K", "__version__"]

# piece types, numbered as sentencepiece's (and tokenmill.h's tkm_piece_type)
PIECE_NORMAL, PIECE_UNKNOWN, PIECE_CONTROL, PIECE_USER_DEFINED, PIECE_UNUSED, PIECE_BYTE = 1, 2, 3, 4, 5, 6
# tiktoken pre-tokenization patterns (tokenmill.h TKM_TIKTOKEN_*); None: from the file name
TIKTOKEN_R50K, TIKTOKEN_CL100K, TIKTOKEN_O200K = 1, 2, 3


class Tokenizer:
    """A tokenizer loaded from a sentencepiece .model, a HF tokenizer.json
    (first non-blank byte '{') or a tiktoken rank file (name ending in
    .tiktoken, or any name with tiktoken_pattern given)."""

    def __init__(self, path, tiktoken_pattern=None):
        self._set(_Model(_os.fspath(path), 0 if tiktoken_pattern is None else int(tiktoken_pattern)))

    @classmethod
    def _wrap(cls, model):
        self = cls.__new__(cls)
        self._set(model)
        return self

    def _set(self, model):
        self._m = model
        info = self._m.info()
        self.vocab_size = info["vocab_size"]
        #: special ids, -1 when the model has none (as sentencepiece)
        self.bos_id = info["bos_id"]
        self.eos_id = info["eos_id"]
        self.unk_id = info["unk_id"]
        self.pad_id = info["pad_id"]
        self.model_type = info["model_type"]
        self._dtype = None if _np is None else (_np.uint16 if self.vocab_size <= 65536 else _np.uint32)

    def __len__(self):
        return self.vocab_size

    def __repr__(self):
        return "<tokenmill.Tokenizer %s, %d pieces>" % (self.model_type, self.vocab_size)

    def encode(self, text, threads=None, as_numpy=None):
        """Ids of a str (or UTF-8 bytes): list[int]. A list/tuple of them:
        encoded by `threads` C threads (default: all CPUs) with the GIL
        released; returns a list of numpy arrays (uint16 when the vocabulary
        fits, else uint32) when numpy is importable (as_numpy=False: lists).
        Nothing is added around a line (no BOS/EOS), as sentencepiece's
        encode."""
        if isinstance(text, (str, bytes)):
            return self._m.encode(text)
        if not isinstance(text, (list, tuple)):
            text = list(text)
        if threads is None:
            threads = _os.cpu_count() or 1
        use_np = _np is not None if as_numpy is None else bool(as_numpy)
        if use_np and _np is None:
            raise ImportError("as_numpy=True needs numpy")
        width = 2 if use_np and self._dtype is _np.uint16 else 4
        flat, offs = self._m.encode_batch(text, int(threads), width)
        if use_np:
            ids = _np.frombuffer(flat, dtype=self._dtype)
            o = _np.frombuffer(offs, dtype=_np.uint64).astype(_np.intp)
            return [ids[o[i]:o[i + 1]] for i in range(len(text))]
        import array
        a = array.array("I" if array.array("I").itemsize == 4 else "L")
        a.frombytes(flat)
        o = array.array("Q")
        o.frombytes(offs)
        return [a[o[i]:o[i + 1]].tolist() for i in range(len(text))]

    def encode_flat(self, texts, threads=None):
        """A batch as one numpy array of ids and n + 1 offsets (line i is
        ids[offsets[i]:offsets[i + 1]]): no per-line objects at all."""
        if _np is None:
            raise ImportError("encode_flat needs numpy")
        if threads is None:
            threads = _os.cpu_count() or 1
        flat, offs = self._m.encode_batch(list(texts) if not isinstance(texts, (list, tuple)) else texts,
                                          int(threads), 2 if self._dtype is _np.uint16 else 4)
        return _np.frombuffer(flat, dtype=self._dtype), _np.frombuffer(offs, dtype=_np.uint64)

    def decode(self, ids):
        """Text of ids, as libsentencepiece's DecodeIds (a numpy array or any
        sequence of ints). A list of sequences decodes each."""
        if _np is not None and isinstance(ids, _np.ndarray):
            if ids.ndim != 1:
                raise ValueError("decode() wants a 1-D array of ids")
            return self._m.decode(ids.tolist())
        if isinstance(ids, (list, tuple)) and ids and not isinstance(ids[0], int) and \
                not (_np is not None and isinstance(ids[0], _np.integer)):
            return [self.decode(x) for x in ids]
        return self._m.decode(ids)

    def id_to_piece(self, id):
        """The piece string of an id (raw bytes of byte-level vocabularies as
        surrogate escapes; id_to_bytes gives them as bytes)."""
        return self._m.id_to_piece(int(id))

    def id_to_bytes(self, id):
        return self._m.id_to_bytes(int(id))

    def piece_to_id(self, piece):
        """Id of a piece, or None when the vocabulary has no such piece."""
        i = self._m.piece_to_id(piece)
        return None if i < 0 else i

    def piece_type(self, id):
        """PIECE_NORMAL, PIECE_UNKNOWN, PIECE_CONTROL, ... of an id."""
        return self._m.piece_type(int(id))

    def score(self, id):
        return self._m.score(int(id))

    def save(self, path):
        """Writes the model as a sentencepiece .model (atomically)."""
        self._m.save(_os.fspath(path))

    def serialized_model_proto(self):
        """The .model bytes (sentencepiece's name)."""
        return self._m.serialized()


# sentencepiece's SentencePieceTrainer.train keyword names -> tokenmill's
_SPM_NAMES = {
    "vocab_size": "vocab_size", "model_type": "model_type", "character_coverage": "character_coverage",
    "max_sentencepiece_length": "max_piece_length", "split_digits": "split_digits",
    "split_by_unicode_script": "split_by_unicode_script", "split_by_number": "split_by_number",
    "split_by_whitespace": "split_by_whitespace", "allow_whitespace_only_pieces": "allow_whitespace_only_pieces",
    "byte_fallback": "byte_fallback", "add_dummy_prefix": "add_dummy_prefix",
    "remove_extra_whitespaces": "remove_extra_whitespaces", "hard_vocab_limit": "hard_vocab_limit",
    "unk_id": "unk_id", "bos_id": "bos_id", "eos_id": "eos_id", "pad_id": "pad_id", "unk_piece": "unk_piece",
    "bos_piece": "bos_piece", "eos_piece": "eos_piece", "pad_piece": "pad_piece", "unk_surface": "unk_surface",
    "user_defined_symbols": "user_defined_symbols", "control_symbols": "control_symbols", "num_threads": "threads",
    "seed_sentencepiece_size": "seed_size", "shrinking_factor": "shrinking_factor",
    "num_sub_iterations": "num_sub_iterations",
    "enable_differential_privacy": "enable_differential_privacy",
    "differential_privacy_noise_level": "differential_privacy_noise_level",
    "differential_privacy_clipping_threshold": "differential_privacy_clipping_threshold",
    "random_seed": "random_seed",
}
# accepted and ignored: tokenmill always reads every line of the input
_SPM_IGNORED = {"input_sentence_size", "shuffle_input_sentence", "max_sentence_length", "train_extremely_large_corpus",
                "input_format", "minloglevel", "self_test_sample_size"}
_BOOLS = {"split_digits", "split_by_unicode_script", "split_by_number", "split_by_whitespace",
          "allow_whitespace_only_pieces", "byte_fallback", "add_dummy_prefix", "remove_extra_whitespaces",
          "hard_vocab_limit", "enable_differential_privacy"}


def train(input=None, model_prefix=None, sentence_iterator=None, model_writer=None,
          normalization_rule_name="identity", **options):
    """Trains a BPE (default) or Unigram model with libtokenmill's trainer and
    returns it as a Tokenizer; sentencepiece's keyword names
    (SentencePieceTrainer.train): input (files: a list, or a comma-separated
    str), model_prefix (writes PREFIX.model), sentence_iterator (an iterable of
    str, e.g. a generator; each str may hold several lines), model_writer (a
    file-like object that receives the .model bytes), vocab_size, model_type,
    character_coverage, max_sentencepiece_length, split_digits, byte_fallback,
    user_defined_symbols, control_symbols, unk_id/bos_id/eos_id/pad_id and
    their pieces, num_threads, ... Defaults are tokenmill's (identity
    normalization, no dummy prefix, no whitespace folding: give
    add_dummy_prefix=True, remove_extra_whitespaces=True for sentencepiece's).
    enable_differential_privacy, differential_privacy_noise_level,
    differential_privacy_clipping_threshold and random_seed as in
    tokenmill-spm-train(1) (Unigram only; the noise is drawn from random_seed).
    input_sentence_size and the like are accepted and ignored: every line is
    used. The GIL is released while files are read and while merges run."""
    if normalization_rule_name not in ("identity", None):
        raise ValueError("normalization_rule_name %r: only 'identity' is implemented" % normalization_rule_name)
    opts = {}
    for k, v in options.items():
        if k in _SPM_IGNORED:
            continue
        if k not in _SPM_NAMES:
            raise TypeError("train() got an unknown option %r" % k)
        if k in ("user_defined_symbols", "control_symbols"):
            v = [x for x in v.split(",") if x] if isinstance(v, str) else [str(x) for x in v]
        elif k in _BOOLS:
            if isinstance(v, str):
                if v.lower() not in ("true", "false", "1", "0"):
                    raise ValueError("%s: %r is not a boolean" % (k, v))
                v = v.lower() in ("true", "1")
            v = int(bool(v))
        opts[_SPM_NAMES[k]] = v
    opts.setdefault("threads", _os.cpu_count() or 1)
    if input is None:
        files = []
    elif isinstance(input, (str, bytes, _os.PathLike)):
        files = [f for f in _os.fsdecode(input).split(",") if f] if isinstance(input, str) else [_os.fsdecode(input)]
    else:
        files = [_os.fsdecode(f) for f in input]
    if not files and sentence_iterator is None:
        raise ValueError("train() needs input files or a sentence_iterator")
    tok = Tokenizer._wrap(_train(files, sentence_iterator, opts))
    if model_prefix is not None:
        tok.save(_os.fspath(model_prefix) + ".model")
    if model_writer is not None:
        model_writer.write(tok.serialized_model_proto())
    return tok
