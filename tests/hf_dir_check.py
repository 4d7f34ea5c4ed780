#!/usr/bin/env python3
"""hf_dir_check.py DIR MODEL TEXT IDS - checks a folder written by
`tokenmill export --hf-dir` with transformers' AutoTokenizer (fast and
use_fast=False): every line of TEXT (UTF-8 lines; others cannot be Python
str and are counted apart) encodes to the ids in IDS (spm_encode's, one line
each) and decodes as sentencepiece decodes them; the special tokens are the
model's own at their ids, no id is added, padding=True pads with the pad id
under a zero attention mask. Prints one summary line; exits 1 on a mismatch."""
import sys
import warnings

warnings.filterwarnings("ignore")
import sentencepiece as spm  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

transformers.logging.set_verbosity_error()
d, model, text, idfile = sys.argv[1:5]
sp = spm.SentencePieceProcessor(model_file=model)
raw = open(text, "rb").read().split(b"\n")
ids = open(idfile, encoding="ascii").read().split("\n")
if raw and raw[-1] == b"":
    raw.pop()
assert len(ids) >= len(raw), (len(ids), len(raw))
lines, want, skipped = [], [], 0
for b, i in zip(raw, ids):
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError:
        skipped += 1
        continue
    lines.append(s)
    want.append([int(x) for x in i.split()])


def opt(i):
    return None if i < 0 else i


errors = []
names = []
for fast in (True, False):
    tok = AutoTokenizer.from_pretrained(d, use_fast=fast)
    names.append(type(tok).__name__)
    tag = "use_fast=%s" % fast
    n = sp.get_piece_size()
    if len(tok) != n:
        errors.append("%s: %d ids, the model has %d" % (tag, len(tok), n))
    pad = sp.pad_id() if sp.pad_id() >= 0 else sp.eos_id() if sp.eos_id() >= 0 else sp.unk_id()
    got = (tok.bos_token_id, tok.eos_token_id, tok.unk_token_id, tok.pad_token_id)
    exp = (opt(sp.bos_id()), opt(sp.eos_id()), opt(sp.unk_id()), opt(pad))
    if got != exp:
        errors.append("%s: bos/eos/unk/pad ids %s, want %s" % (tag, got, exp))
    for attr, i in (("bos_token", sp.bos_id()), ("eos_token", sp.eos_id()), ("unk_token", sp.unk_id())):
        if i >= 0 and getattr(tok, attr) != sp.id_to_piece(i):
            errors.append("%s: %s %r, want %r" % (tag, attr, getattr(tok, attr), sp.id_to_piece(i)))
    bad = 0
    for k, (s, w) in enumerate(zip(lines, want)):
        got_ids = tok(s)["input_ids"]
        if got_ids != w:
            bad += 1
            if bad <= 2:
                errors.append("%s: line %r: %s, spm_encode %s" % (tag, s[:60], got_ids[:12], w[:12]))
        elif tok.decode(got_ids) != sp.decode(w):
            bad += 1
            if bad <= 2:
                errors.append("%s: decode %r, sentencepiece %r" % (tag, tok.decode(got_ids), sp.decode(w)))
    if bad:
        errors.append("%s: %d of %d lines differ" % (tag, bad, len(lines)))
    batch = [s for s in lines if s][:8]
    enc = tok(batch, padding=True)
    L = max(len(x) for x in enc["input_ids"])
    for s, x, a in zip(batch, enc["input_ids"], enc["attention_mask"]):
        k = sum(a)
        if len(x) != L or x[:k] != sp.encode(s) or any(t != pad for t in x[k:]) or a != [1] * k + [0] * (L - k):
            errors.append("%s: padding=True: %s / %s" % (tag, x[:24], a[:24]))
            break
if errors:
    print("\n".join(errors))
    sys.exit(1)
print("transformers %s (%s): %d lines identical, %d not UTF-8 skipped" % (
    transformers.__version__, "/".join(names), len(lines), skipped))
