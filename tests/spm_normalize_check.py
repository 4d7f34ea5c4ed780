#!/usr/bin/env python3
"""spm_normalize_check.py - compares the normalization of two sentencepiece
models (one written by tokenmill, one by sentencepiece, same rule) as
libsentencepiece applies it (SentencePieceProcessor.normalize):

  * every code point on its own (U+0001..U+10FFFF, no surrogates): the ones
    that differ are listed; each must be unassigned in Python's Unicode
    database (a character newer than the ICU tokenmill was built with) or in
    the allowed list given with --allow;
  * a Unicode stress file written here (seeded): every assigned code point in
    runs, base letters with random combining marks (canonical and
    compatibility spellings), full-width / half-width forms, compatibility
    ideographs, Hangul jamo and compatibility jamo sequences, whitespace
    and control characters; every line that differs must hold a listed
    code point;
  * the text files given with --text: every line must be identical (lines
    holding a listed code point excepted, and counted);
  * where HF `tokenizers` is installed, its Precompiled normalizer reads both
    models' precompiled_charsmap and must agree on the stress file the same way.

Usage: spm_normalize_check.py OURS.model REF.model [--text FILE]... [--allow HEX,...]
Prints a summary; exit 1 on any unexplained difference."""
import random
import sys
import unicodedata

import sentencepiece as spm


def stress_lines(seed=1234):
    rnd = random.Random(seed)
    assigned = [c for c in range(1, 0x110000)
                if not 0xD800 <= c < 0xE000 and unicodedata.category(chr(c)) != 'Cn']
    lines = []
    for i in range(0, len(assigned), 61):  # every assigned code point, in runs
        lines.append(''.join(chr(c) for c in assigned[i:i + 61]))
    marks = [c for c in assigned if unicodedata.category(chr(c)) in ('Mn', 'Mc', 'Me')]
    common = list(range(0x300, 0x370)) + [0x3099, 0x309A, 0x0338]
    bases = ([c for c in range(0x20, 0x250) if unicodedata.category(chr(c))[0] == 'L'] +
             list(range(0xFF21, 0xFF3B)) + list(range(0xFF41, 0xFF5B)) + list(range(0x3041, 0x30FF)) +
             list(range(0xFF66, 0xFF9E)) + list(range(0x391, 0x3CA)) + list(range(0x410, 0x450)))
    for _ in range(6000):  # a base and 1-4 marks, also decomposed and compatibility spellings
        b = rnd.choice(bases)
        ms = [rnd.choice(common if rnd.random() < 0.8 else marks) for _ in range(rnd.randint(1, 4))]
        s = chr(b) + ''.join(chr(m) for m in ms)
        lines.append(s + ' ' + unicodedata.normalize('NFD', s) + ' ' + unicodedata.normalize('NFKD', s) + ' x' + s)
    for start, end in ((0xFF01, 0xFFEF), (0xF900, 0xFB00), (0x2F800, 0x2FA20), (0x3131, 0x318F),
                       (0x1100, 0x1200), (0x2460, 0x2500), (0x3200, 0x3400), (0x1D400, 0x1D800),
                       (0xFB00, 0xFE00), (0xFE10, 0xFE70), (0x2000, 0x2070), (0, 0x20), (0x7F, 0xA0)):
        cs = [c for c in range(start, end) if c and unicodedata.category(chr(c)) != 'Cn' or c in range(1, 0xA0)]
        for i in range(0, len(cs), 40):
            lines.append('a' + ''.join(chr(c) for c in cs[i:i + 40]) + 'b')
    L = list(range(0x1100, 0x1113)) + list(range(0x3131, 0x314F)) + list(range(0xFFA1, 0xFFBF))
    V = list(range(0x1161, 0x1176)) + list(range(0x314F, 0x3164)) + list(range(0xFFC2, 0xFFDD))
    T = list(range(0x11A8, 0x11C3)) + list(range(0x3131, 0x314F))
    for _ in range(3000):  # jamo sequences in every spelling
        lines.append(' '.join(chr(rnd.choice(L)) + chr(rnd.choice(V)) + (chr(rnd.choice(T)) if rnd.random() < 0.6 else '')
                              for _ in range(5)))
    for _ in range(2000):  # random mixtures of assigned code points and spaces
        lines.append(''.join(chr(rnd.choice(assigned)) if rnd.random() < 0.85 else rnd.choice(' \t\u3000\u00a0')
                             for _ in range(rnd.randint(1, 30))))
    return [ln.replace('\n', ' ').replace('\r', ' ') for ln in lines]


def main():
    args = sys.argv[1:]
    ours, ref = args[0], args[1]
    texts, allow = [], set()
    i = 2
    while i < len(args):
        if args[i] == '--text':
            texts.append(args[i + 1]); i += 2
        elif args[i] == '--allow':
            allow |= {int(h, 16) for h in args[i + 1].split(',') if h}; i += 2
        else:
            sys.exit('unknown argument ' + args[i])
    a = spm.SentencePieceProcessor(model_file=ours)
    b = spm.SentencePieceProcessor(model_file=ref)
    cps = [c for c in range(1, 0x110000) if not 0xD800 <= c < 0xE000]
    na = a.normalize([chr(c) for c in cps])
    nb = b.normalize([chr(c) for c in cps])
    diff = [c for c, x, y in zip(cps, na, nb) if x != y]
    bad = [c for c in diff if unicodedata.category(chr(c)) != 'Cn' and c not in allow]
    print('code points: %d compared, %d differ (unassigned in Unicode %s or allowed), %d unexplained'
          % (len(cps), len(diff) - len(bad), unicodedata.unidata_version, len(bad)))
    if diff:
        print('  differing: ' + ' '.join('U+%04X' % c for c in diff[:80]) + (' ...' if len(diff) > 80 else ''))
    for c in bad[:20]:
        print('  UNEXPLAINED U+%04X %s: ours %r, sentencepiece %r'
              % (c, unicodedata.name(chr(c), '?'), a.normalize(chr(c)), b.normalize(chr(c))))
    known = set(diff)
    failed = len(bad) > 0

    def compare(name, lines):
        nonlocal failed
        xa, xb = a.normalize(lines), b.normalize(lines)
        differ = unexplained = 0
        for ln, x, y in zip(lines, xa, xb):
            if x == y:
                continue
            differ += 1
            if not any(ord(ch) in known for ch in ln):
                unexplained += 1
                if unexplained <= 5:
                    print('  UNEXPLAINED in %s: %r: ours %r, sentencepiece %r' % (name, ln[:80], x[:80], y[:80]))
        print('%s: %d lines, %d identical, %d differ on a listed code point, %d unexplained'
              % (name, len(lines), len(lines) - differ, differ - unexplained, unexplained))
        failed |= unexplained > 0

    stress = stress_lines()
    compare('stress', stress)
    try:
        from tokenizers import normalizers
        from sentencepiece import sentencepiece_model_pb2 as mp
    except ImportError:
        print('HF tokenizers not installed: its Precompiled normalizer not compared')
    else:
        def charsmap(path):
            m = mp.ModelProto()
            with open(path, 'rb') as f:
                m.ParseFromString(f.read())
            return m.normalizer_spec.precompiled_charsmap
        ha, hb = normalizers.Precompiled(charsmap(ours)), normalizers.Precompiled(charsmap(ref))
        hd = [ln for ln in stress if ha.normalize_str(ln) != hb.normalize_str(ln)]
        hu = [ln for ln in hd if not any(ord(ch) in known for ch in ln)]
        print('HF Precompiled, stress: %d lines, %d differ on a listed code point, %d unexplained'
              % (len(stress), len(hd) - len(hu), len(hu)))
        for ln in hu[:5]:
            print('  UNEXPLAINED (HF): %r' % ln[:80])
        failed |= len(hu) > 0
    for t in texts:
        with open(t, 'rb') as f:
            lines = [ln.decode('utf-8', 'replace') for ln in f.read().split(b'\n')]
        compare(t, lines)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
