#!/usr/bin/env python3
"""spm_parity_check.py - compares a model written by `tokenmill spm-train`
with one written by PyPI sentencepiece from the same input and options.

  exact OURS REF        every id: same piece, score (bit for bit) and type
  unigram OURS REF TEXT [CHARS]
                        same size, same special / user-defined pieces at the
                        same ids; reports the shared pieces and the held-out
                        token counts of both (sentencepiece's encoder);
                        fails when fewer than MIN_SHARED of the pieces are
                        shared or ours needs more than MAX_WORSE more tokens
                        (fewer tokens, better compression, is reported only)
Prints one summary line; exit 1 on a mismatch."""
import struct
import sys

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as mp

MIN_SHARED = 0.80   # share of pieces in both vocabularies (Unigram)
MAX_WORSE = 0.005   # held-out tokens: ours at most 0.5% more than sentencepiece's (Unigram)


def load(path):
    m = mp.ModelProto()
    with open(path, 'rb') as f:
        m.ParseFromString(f.read())
    return m


def fbits(x):
    return struct.unpack('<I', struct.pack('<f', x))[0]


def exact(a, b):
    if len(a.pieces) != len(b.pieces):
        print('sizes differ: %d vs %d' % (len(a.pieces), len(b.pieces)))
        return 1
    for i, (p, q) in enumerate(zip(a.pieces, b.pieces)):
        if p.piece != q.piece or fbits(p.score) != fbits(q.score) or p.type != q.type:
            print('id %d: ours %r %r type %d, sentencepiece %r %r type %d'
                  % (i, p.piece, p.score, p.type, q.piece, q.score, q.type))
            return 1
    print('%d pieces identical (piece, score, type)' % len(a.pieces))
    return 0


def unigram(a, b, ours, ref, text, required=''):
    if len(a.pieces) != len(b.pieces):
        print('sizes differ: %d vs %d' % (len(a.pieces), len(b.pieces)))
        return 1
    for i, (p, q) in enumerate(zip(a.pieces, b.pieces)):
        if (p.type != 1 or q.type != 1) and (p.piece, p.type) != (q.piece, q.type):
            print('special id %d: ours %r type %d, sentencepiece %r type %d' % (i, p.piece, p.type, q.piece, q.type))
            return 1
    shared = len({p.piece for p in a.pieces} & {q.piece for q in b.pieces}) / len(a.pieces)
    missing = [c for c in required if c not in {p.piece for p in a.pieces}]
    if missing:
        print('required characters missing: %r' % missing)
        return 1
    with open(text, encoding='utf-8', errors='replace') as f:
        lines = f.read().split('\n')
    ta = sum(len(x) for x in spm.SentencePieceProcessor(model_file=ours).encode(lines))
    tb = sum(len(x) for x in spm.SentencePieceProcessor(model_file=ref).encode(lines))
    d = (ta - tb) / tb
    print('%d pieces, %.1f%% shared, held-out tokens %d vs sentencepiece %d (%+.2f%%)'
          % (len(a.pieces), 100 * shared, ta, tb, 100 * d))
    return 0 if shared >= MIN_SHARED and d <= MAX_WORSE else 1


def main():
    mode, ours, ref = sys.argv[1:4]
    a, b = load(ours), load(ref)
    if mode == 'exact':
        sys.exit(exact(a, b))
    sys.exit(unigram(a, b, ours, ref, sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else ''))


if __name__ == '__main__':
    main()
