#!/usr/bin/env bash
# tests/fuzz/seeds.sh OUTDIR - the fuzzers' seed corpora, made on the fly:
# small models trained by tokenmill (BPE and Unigram, byte fallback, special
# and user-defined pieces, normalizer switches) with their tokenizer.json
# exports, and hand-built tiktoken, GGUF, safetensors, .npy, gzip and corpus
# files (python3, standard library). Nothing here is committed.
# Needs TKM_BIN (default ./tokenmill) and python3.
set -euo pipefail
out=${1:?usage: seeds.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
bin=${TKM_BIN:-$PWD/tokenmill}
[ -x "$bin" ] || { echo "seeds.sh: $bin not found (build first, or set TKM_BIN)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "seeds.sh: python3 not found" >&2; exit 1; }
mkdir -p "$out"/{model,hf_json,tiktoken,gguf,safetensors,npy,reader,counts,roundtrip,train,splice}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# a small mixed corpus: the tricky fixture and some plain sentences
{
    cat "$src/tests/data/tricky.txt"
    for i in 1 2 3; do
        echo "The quick brown fox jumps over the lazy dog $i times."
        echo "日本語の文章です。東京と大阪に行きました。"
        echo "Numbers 12345, 3.14159 and 2026-12-04; symbols <>&\"' {}[]()!?"
    done
} > "$tmp/corpus.txt"

n=0
train() { # name, options...
    local name=$1; shift
    if "$bin" train -q -t 1 --hard-vocab-limit=false --character-coverage 0.9 "$@" -o "$out/model/$name.model" "$tmp/corpus.txt" 2>"$tmp/err"; then
        n=$((n + 1))
    else
        echo "seeds.sh: training $name failed: $(cat "$tmp/err")" >&2; exit 1
    fi
}
train bpe --vocab-size 200
# count files (default counting options, as fuzz_counts' trainer): gzip, plain, truncated
"$bin" count -q -t 1 -o "$out/counts/corpus.tkc" "$tmp/corpus.txt"
zcat "$out/counts/corpus.tkc" > "$out/counts/plain.tkc"
head -c 300 "$out/counts/plain.tkc" > "$out/counts/truncated.tkc"
train bpe_bytes --vocab-size 500 --byte-fallback
train bpe_prefix --vocab-size 250 --add-dummy-prefix --remove-extra-whitespaces --split-digits
train bpe_user --vocab-size 250 --user-defined-symbols '<tag>,foo' --control-symbols '<ctl>' --pad-id 3
train bpe_ws --vocab-size 200 --allow-whitespace-only-pieces --split-by-unicode-script=false
train unigram --model-type unigram --vocab-size 200
train unigram_bytes --model-type unigram --vocab-size 500 --byte-fallback --add-dummy-prefix
train unigram_user --model-type unigram --vocab-size 250 --user-defined-symbols '<tag>' --max-piece-length 4

for m in bpe bpe_bytes bpe_prefix bpe_user bpe_ws unigram; do
    "$bin" export --hf-json --hf-allow-ties -m "$out/model/$m.model" -o "$out/hf_json/$m.json" 2>/dev/null ||
        echo "seeds.sh: note: export of $m refused" >&2
done

python3 - "$out" "$tmp/corpus.txt" "$out/model/bpe.model" <<'PY'
import base64, gzip, json, os, struct, sys
out, corpus_path, model_path = sys.argv[1], sys.argv[2], sys.argv[3]
corpus = open(corpus_path, 'rb').read()
def w(sub, name, data):
    with open(os.path.join(out, sub, name), 'wb') as f: f.write(data)

# ---- tiktoken: 256 byte tokens, then greedy byte-pair merges over the corpus;
# the first byte of a seed picks the pattern (0 r50k, 1 cl100k, 2 o200k)
toks = [bytes([b]) for b in range(256)]
words = [list(bytes([b]) for b in wd) for wd in corpus.split(b' ') if wd]
for _ in range(60):
    cnt = {}
    for wd in words:
        for a, b in zip(wd, wd[1:]): cnt[(a, b)] = cnt.get((a, b), 0) + 1
    if not cnt: break
    (a, b), _ = max(cnt.items(), key=lambda kv: (kv[1], kv[0]))
    toks.append(a + b)
    nw = []
    for wd in words:
        r, i = [], 0
        while i < len(wd):
            if i + 1 < len(wd) and wd[i] == a and wd[i + 1] == b: r.append(a + b); i += 2
            else: r.append(wd[i]); i += 1
        nw.append(r)
    words = nw
lines = [base64.b64encode(t) + b' ' + str(i).encode() for i, t in enumerate(toks)]
body = b'\n'.join(lines) + b'\n'
for p in range(3): w('tiktoken', 'ranks%d' % p, bytes([p]) + body)
w('tiktoken', 'crlf_nonl', b'\x01' + b'\r\n'.join(lines))
w('tiktoken', 'small', b'\x00' + b'\n'.join(lines[:300]))

# ---- npy (v1 and v2; <f4, <f2) with 2..6 rows
def npy(shape, descr, data, major=1):
    d = "{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d), }" % (descr, shape[0], shape[1])
    hl = 10 if major == 1 else 12
    pad = (64 - (hl + len(d) + 1) % 64) % 64
    h = (d + ' ' * pad + '\n').encode()
    return b'\x93NUMPY' + bytes([major, 0]) + (struct.pack('<H', len(h)) if major == 1 else struct.pack('<I', len(h))) + h + data
f32 = lambda n: struct.pack('<%df' % n, *[(i % 7) * 0.25 - 0.5 for i in range(n)])
f16 = lambda n: struct.pack('<%de' % n, *[(i % 5) * 0.5 - 1 for i in range(n)])
w('npy', 'f4', npy((3, 4), '<f4', f32(12)))
w('npy', 'f2', npy((2, 8), '<f2', f16(16)))
w('npy', 'v2', npy((6, 2), '<f4', f32(12), major=2))

# ---- safetensors (F32, F16, BF16), with __metadata__ and a second tensor
def st(tensors, meta=None):
    hdr, off, blob = {}, 0, b''
    if meta: hdr['__metadata__'] = meta
    for name, dt, shape, data in tensors:
        hdr[name] = {'dtype': dt, 'shape': list(shape), 'data_offsets': [off, off + len(data)]}
        off += len(data); blob += data
    h = json.dumps(hdr).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    return struct.pack('<Q', len(h)) + h + blob
bf16 = lambda n: b''.join(struct.pack('<f', (i % 3) - 1.0)[2:] for i in range(n))
w('safetensors', 'f32', st([('model.embed_tokens.weight', 'F32', (3, 4), f32(12))]))
w('safetensors', 'f16', st([('bert.embeddings.word_embeddings.weight', 'F16', (2, 8), f16(16)),
                            ('other.bias', 'F32', (2,), f32(2))], {'format': 'pt'}))
w('safetensors', 'bf16', st([('embed_tokens.weight', 'BF16', (4, 2), bf16(8))]))

# ---- GGUF v3: token_embd.weight F32 / F16 / BF16 / Q8_0, with a vocabulary
def gstr(s): return struct.pack('<Q', len(s)) + s
def gguf(ttype, rows, dim, data, tokens=None, types=None, model=b'llama', align=None, version=3):
    kv = []
    kv.append(gstr(b'general.architecture') + struct.pack('<I', 8) + gstr(b'llama'))
    if align: kv.append(gstr(b'general.alignment') + struct.pack('<II', 4, align))
    if model: kv.append(gstr(b'tokenizer.ggml.model') + struct.pack('<I', 8) + gstr(model))
    if tokens is not None:
        kv.append(gstr(b'tokenizer.ggml.tokens') + struct.pack('<IIQ', 9, 8, len(tokens)) + b''.join(gstr(t) for t in tokens))
    if types is not None:
        kv.append(gstr(b'tokenizer.ggml.token_type') + struct.pack('<IIQ', 9, 5, len(types)) + struct.pack('<%di' % len(types), *types))
    kv.append(gstr(b'some.float') + struct.pack('<If', 6, 1.5))
    kv.append(gstr(b'some.array') + struct.pack('<IIQ', 9, 4, 3) + struct.pack('<3I', 1, 2, 3))
    ti = gstr(b'token_embd.weight') + struct.pack('<IQQIQ', 2, dim, rows, ttype, 0)
    head = b'GGUF' + struct.pack('<IQQ', version, 1, len(kv)) + b''.join(kv) + ti
    a = align or 32
    head += b'\0' * ((a - len(head) % a) % a)
    return head + data
sp_tokens = [b'<unk>', b'<s>', b'</s>', b'<0x41>', b'\xe2\x96\x81the', b'a']
w('gguf', 'f32', gguf(0, 6, 2, f32(12), sp_tokens, [2, 3, 3, 6, 1, 1]))
w('gguf', 'f16', gguf(1, 2, 8, f16(16), [b'\xc4\xa0the', b'hello'], [1, 4], model=b'gpt2', align=64))
w('gguf', 'bf16', gguf(30, 4, 2, bf16(8), [b'[CLS]', b'##ing', b'word', b'[unused1]'], [3, 1, 1, 5], model=b'bert'))
q8 = b''.join(struct.pack('<e', 0.01) + bytes(range(32)) for _ in range(2))
w('gguf', 'q8_0', gguf(8, 2, 32, q8, [b'x', b'y'], None, model=b'plain', version=2))

# ---- reader: plain, CRLF, no final newline, long line, gzip (also truncated)
w('reader', 'plain', corpus)
w('reader', 'crlf_nonl', b'one\r\ntwo\r\nthree')
w('reader', 'long', b'x' * 5000 + b'\n\n\n' + b'y' * 100)
gz = gzip.compress(corpus)
w('reader', 'gzip', gz)
w('reader', 'gzip_concat', gzip.compress(b'a\nb\n') + gzip.compress(b'c\nd'))
w('reader', 'gzip_truncated', gz[: len(gz) // 2])

# ---- round trip: model byte (0..7), then text
lines = corpus.split(b'\n')
for i, ln in enumerate(lines):
    if ln: w('roundtrip', 'line%02d' % i, bytes([i % 8]) + ln)

# ---- trainer: three option bytes, then a few lines
for i, flags in enumerate([0x00, 0x01, 0x02, 0x03, 0x0c, 0x14, 0x21, 0x42, 0x83, 0xff]):
    chunk = b'\n'.join(lines[i % len(lines): i % len(lines) + 4])[:600]
    w('train', 'opts%02d' % i, bytes([flags, 20 + 17 * i, (i * 37) & 0xff]) + chunk)
PY

# byte-level BPE and Unigram tokenizer.json files written by HF tokenizers (when installed)
python3 - "$tmp/corpus.txt" "$out/hf_json" >/dev/null 2>&1 <<'PY' || echo "seeds.sh: note: HF tokenizers missing or failed: fewer tokenizer.json seeds" >&2
import sys
from tokenizers import Tokenizer, Regex, models, normalizers, pre_tokenizers, trainers, decoders
text = open(sys.argv[1], encoding='utf-8', errors='replace').read().split('\n')
t = Tokenizer(models.BPE())
t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
t.decoder = decoders.ByteLevel()
t.train_from_iterator(text, trainers.BpeTrainer(vocab_size=300, special_tokens=['<|endoftext|>'],
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
t.save(sys.argv[2] + '/hf_bytelevel.json')
t = Tokenizer(models.BPE(byte_fallback=True, fuse_unk=True, unk_token='<unk>'))
t.normalizer = normalizers.Sequence([normalizers.Prepend('\u2581'), normalizers.Replace(' ', '\u2581')])
t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex('\\d'), 'isolated'), pre_tokenizers.Digits(individual_digits=True)])
t.train_from_iterator(text, trainers.BpeTrainer(vocab_size=200, special_tokens=['<unk>', '<s>']))
t.save(sys.argv[2] + '/hf_metaspace.json')
t = Tokenizer(models.Unigram())
t.pre_tokenizer = pre_tokenizers.Metaspace()
t.train_from_iterator(text, trainers.UnigramTrainer(vocab_size=400, special_tokens=['<unk>'], unk_token='<unk>'))
t.save(sys.argv[2] + '/hf_unigram.json')
PY

# GGUF written by tokenmill's own writer (softemb import), sentencepiece vocabulary
python3 - "$tmp/m.npy" <<'PY'
import struct, sys
d = "{'descr': '<f4', 'fortran_order': False, 'shape': (512, 4), }"
h = (d + ' ' * ((64 - (10 + len(d) + 1) % 64) % 64) + '\n').encode()
open(sys.argv[1], 'wb').write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(h)) + h + struct.pack('<2048f', *[i * 0.01 for i in range(2048)]))
PY
for dt in f32 f16 bf16; do
    "$bin" softemb import --teacher "$tmp/m.npy" --teacher-vocab "$out/model/bpe.model" --dtype $dt \
        -o "$out/gguf/import_$dt.gguf" 2>/dev/null || echo "seeds.sh: note: softemb import ($dt) failed" >&2
done
# splice: the GGUF seeds (the 32-wide Q8_0 one goes all the way through)
cp "$out"/gguf/* "$out/splice/"
echo "seeds.sh: $n models; seeds in $out:$(for d in "$out"/*/; do printf ' %s %s' "$(basename "$d")" "$(ls "$d" | wc -l)"; done)"
