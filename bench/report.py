#!/usr/bin/env python3
"""Turn bench/run.sh's results.tsv into the printed tables and the JSON file.

usage: report.py RESULTS.tsv OUT.json

Record kinds (tab-separated), as written by run.sh:
  meta KEY VALUE
  train TOOL REP WALL_S RSS_KB          train_heldout TOOL REP WALL_S RSS_KB
  encode TOOL THREADS REP WALL_S RSS_KB ENCODE_S|-
  compress TOOL SPLIT LANG TEXT_BYTES TOKENS
  check NAME RESULT                     note TEXT
"""
import json
import statistics
import sys

TOOLS = ("tokenmill", "spm_cli", "spm_py", "hf")


def load(path):
    meta, train, train_ho, encode, compress, checks, notes = {}, {}, {}, {}, [], {}, []
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = line.rstrip("\n").split("\t")
            kind = r[0]
            if kind == "meta":
                meta[r[1]] = r[2] if len(r) > 2 else ""
            elif kind in ("train", "train_heldout"):
                d = train if kind == "train" else train_ho
                d.setdefault(r[1], []).append((float(r[3]), int(r[4])))
            elif kind == "encode":
                enc = None if r[6] == "-" else float(r[6])
                encode.setdefault((r[1], int(r[2])), []).append(
                    (float(r[4]), int(r[5]), enc))
            elif kind == "compress":
                compress.append({"tool": r[1], "split": r[2], "lang": r[3],
                                 "text_bytes": int(r[4]), "tokens": int(r[5])})
            elif kind == "check":
                checks[r[1]] = r[2]
            elif kind == "note":
                notes.append(r[1])
    return meta, train, train_ho, encode, compress, checks, notes


def labels(meta):
    return {
        "tokenmill": f"tokenmill {meta.get('v_tokenmill', '').split()[-1]}",
        "spm_cli": f"spm_train/spm_encode {meta.get('v_spm_cli', '').split()[-1]} (Debian)",
        "spm_py": f"sentencepiece {meta.get('v_spm_py')} (PyPI)",
        "hf": f"HF tokenizers {meta.get('v_hf')} (PyPI)",
    }


def entry(sp, i):
    """What a model says about piece i: surface, score and type."""
    return (sp.id_to_piece(i), sp.get_score(i), sp.is_unknown(i),
            sp.is_control(i), sp.is_byte(i), sp.is_unused(i))


def vocab_compare(meta):
    """Pieces shared between the tokenmill model and the spm-trained ones."""
    out = {}
    try:
        import sentencepiece as spm
    except ImportError:
        return out
    tm = meta.get("model_tokenmill")
    if not tm:
        return out
    try:
        a = spm.SentencePieceProcessor(model_file=tm)
        pa = [a.id_to_piece(i) for i in range(a.get_piece_size())]
        fa = [entry(a, i) for i in range(a.get_piece_size())]
    except Exception:  # noqa: BLE001 - report what can be reported
        return out
    for peer in ("spm_cli", "spm_py"):
        path = meta.get(f"model_{peer}")
        if not path:
            continue
        try:
            b = spm.SentencePieceProcessor(model_file=path)
        except Exception:  # noqa: BLE001
            continue
        pb = [b.id_to_piece(i) for i in range(b.get_piece_size())]
        fb = [entry(b, i) for i in range(b.get_piece_size())]
        same_id = sum(1 for x, y in zip(pa, pb) if x == y)
        first = next((i for i, (x, y) in enumerate(zip(pa, pb)) if x != y),
                     None)
        out[peer] = {"pieces_tokenmill": len(pa), "pieces_peer": len(pb),
                     "common": len(set(pa) & set(pb)), "same_id": same_id,
                     "first_differing_id": first,
                     "identical_vocab": fa == fb}
    return out


def fmt_table(headers, rows, align):
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]

    def line(cells):
        return " | ".join(str(c).ljust(w) if a == "l" else str(c).rjust(w)
                          for c, w, a in zip(cells, widths, align))
    sep = "-+-".join("-" * w for w in widths)
    return "\n".join([line(headers), sep] + [line(r) for r in rows])


def main():
    meta, train, train_ho, encode, compress, checks, notes = load(sys.argv[1])
    lab = labels(meta)
    out = {"machine": {}, "versions": {}, "config": {}, "train": [],
           "encode": [], "parity": checks, "compression": [], "notes": []}
    p = []

    mode = "quick (5 MB slice)" if meta.get("quick") == "1" else "full corpus"
    out["machine"] = {"nproc": int(meta["nproc"]), "cpu": meta["cpu"],
                      "memory": meta["mem"], "os": meta["os"],
                      "kernel": meta["kernel"]}
    out["versions"] = {"tokenmill": meta["v_tokenmill"],
                       "tokenmill_binary": meta.get("tokenmill_binary"),
                       "tokenmill_built": meta.get("tokenmill_built"),
                       "tokenmill_sha256_prefix": meta.get("tokenmill_sha256"),
                       "git_head": meta.get("git_head"),
                       "spm_cli": meta["v_spm_cli"], "python": meta["v_python"],
                       "sentencepiece_pypi": meta["v_spm_py"],
                       "tokenizers_pypi": meta["v_hf"]}
    corpus_bytes = int(meta["corpus_bytes"])
    out["config"] = {"date": meta["date"], "mode": mode,
                     "reps": int(meta["reps"]), "vocab_size": int(meta["vocab"]),
                     "corpus_dir": meta["corpus_dir"],
                     "corpus_files": meta["corpus_files"].split(),
                     "corpus_bytes": corpus_bytes,
                     "corpus_lines": int(meta["corpus_lines"]),
                     "heldout_lines_per_file": int(meta["heldout_lines"])}

    p.append(f"tokenmill benchmark, {meta['date']}, {mode}")
    p.append(f"machine:  {meta['nproc']} CPUs (nproc), {meta['cpu']}, "
             f"{meta['mem']} RAM, {meta['os']}, Linux {meta['kernel']}")
    p.append(f"versions: {meta['v_tokenmill']}; spm_train/spm_encode: "
             f"{meta['v_spm_cli']} (Debian); Python {meta['v_python']}: "
             f"sentencepiece {meta['v_spm_py']}, tokenizers {meta['v_hf']}")
    p.append(f"tokenmill binary: {meta.get('tokenmill_binary')} (snapshot; "
             f"built {meta.get('tokenmill_built')}, sha256 "
             f"{meta.get('tokenmill_sha256')}..., tree HEAD {meta.get('git_head')})")
    p.append(f"corpus:   {len(meta['corpus_files'].split())} files (en + ja), "
             f"{corpus_bytes / 1e6:.2f} MB, {meta['corpus_lines']} lines; "
             f"vocab {meta['vocab']}; reps {meta['reps']} (median; "
             f"spm_train Debian: 1 rep)")
    p.append("")

    # ------------------------------------------------------------ training
    tm = train.get("tokenmill")
    tm_wall = statistics.median(w for w, _ in tm)
    tm_rss = statistics.median(r for _, r in tm)
    rows = []
    for tool in TOOLS:
        if tool not in train:
            continue
        runs = train[tool]
        wall = statistics.median(w for w, _ in runs)
        rss = statistics.median(r for _, r in runs)
        entry = {"tool": tool, "label": lab[tool], "reps": len(runs),
                 "wall_s_median": wall, "wall_s_all": [w for w, _ in runs],
                 "peak_rss_mb_median": rss / 1024,
                 "peak_rss_mb_all": [r / 1024 for _, r in runs],
                 "time_ratio_vs_tokenmill": wall / tm_wall,
                 "rss_ratio_vs_tokenmill": rss / tm_rss}
        if tool in ("spm_cli", "spm_py"):
            entry["lines_loaded"] = meta.get(f"{tool}_loaded")
            entry["lines_skipped_too_long"] = meta.get(f"{tool}_skipped")
        if tool == "hf":
            entry["vocab_size_actual"] = int(meta.get("hf_vocab", 0))
        out["train"].append(entry)
        rows.append([lab[tool], len(runs), f"{wall:.2f}", f"{rss / 1024:.1f}",
                     f"{wall / tm_wall:.2f}x", f"{rss / tm_rss:.2f}x"])
    p.append(f"TRAINING  BPE, vocab {meta['vocab']}, 2 threads, same corpus "
             "(ratio = tool / tokenmill; > 1: tokenmill is faster / smaller)")
    p.append(fmt_table(["tool", "reps", "wall s (median)", "peak RSS MB",
                        "time vs tokenmill", "RSS vs tokenmill"], rows,
                       "lrrrrr"))
    for tool in ("spm_cli", "spm_py"):
        if tool in train:
            p.append(f"  {lab[tool]}: loaded {meta.get(tool + '_loaded')} of "
                     f"{meta['corpus_lines']} lines, skipped "
                     f"{meta.get(tool + '_skipped')} as too long "
                     "(--max_sentence_length=100000000)")
    if "hf" in train:
        p.append(f"  HF tokenizers: final vocab {meta.get('hf_vocab')} "
                 "(its trainer adds no <0xNN> byte pieces)")
    vc = vocab_compare(meta)
    for peer, v in vc.items():
        if v["identical_vocab"]:
            what = "identical vocab (piece, score and type at every id)"
        else:
            what = (f"{v['common']} of {v['pieces_tokenmill']} pieces in "
                    f"common, {v['same_id']} at the same id (first "
                    f"difference at id {v['first_differing_id']})")
        p.append(f"  tokenmill model vs {lab[peer]} model: {what}")
    out["model_comparison"] = vc
    p.append("")

    # ------------------------------------------------------------ encoding
    tm_vocab = vc.get("spm_cli", vc.get("spm_py", {})).get("pieces_tokenmill",
                                                          int(meta["vocab"]))
    base = {}
    for t in (1, 2):
        runs = encode.get(("tokenmill", t))
        if runs:
            base[t] = statistics.median(w for w, _, _ in runs)
    rows = []
    for tool in TOOLS:
        for t in (1, 2):
            runs = encode.get((tool, t))
            if not runs:
                continue
            python = runs[0][2] is not None
            secs = statistics.median((e if python else w) for w, _, e in runs)
            proc = statistics.median(w for w, _, _ in runs)
            rss = statistics.median(r for _, r, _ in runs)
            mbs = corpus_bytes / 1e6 / secs
            ref = base.get(t)
            ratio = secs / ref if ref else None
            vocab = (f"own, {meta.get('hf_vocab')}" if tool == "hf"
                     else f"tokenmill's, {tm_vocab}")
            timed = "encode call" if python else "whole process"
            out["encode"].append({
                "tool": tool, "label": lab[tool], "threads": t,
                "reps": len(runs), "model": vocab, "timed": timed,
                "seconds_median": secs, "process_wall_s_median": proc,
                "mb_per_s": mbs, "peak_rss_mb_median": rss / 1024,
                "time_ratio_vs_tokenmill_same_threads": ratio})
            rows.append([lab[tool], t, vocab, timed, f"{secs:.2f}",
                         f"{mbs:.1f}", f"{ratio:.2f}x" if ratio else "-",
                         f"{proc:.2f}", f"{rss / 1024:.1f}"])
    p.append(f"ENCODING  whole corpus ({corpus_bytes / 1e6:.2f} MB = 10^6 "
             "bytes), ids out (ratio = tool time / tokenmill time, same threads)")
    p.append(fmt_table(["tool", "threads", "model (vocab)", "timed", "s (median)",
                        "MB/s", "time vs tokenmill", "process s",
                        "peak RSS MB"], rows, "lrllrrrrr"))
    p.append("")
    p.append("PARITY")
    names = {"ids_tokenmill_vs_spm_cli": "tokenmill encode ids == spm_encode (Debian) ids",
             "ids_tokenmill_vs_spm_py": "tokenmill encode ids == PyPI sentencepiece ids",
             "ids_tokenmill_t1_vs_t2": "tokenmill encode -t 1 == -t 2"}
    for k, v in checks.items():
        if k in names:
            p.append(f"  {names[k]}: {v}")
    p.append(f"  (whole corpus: {meta.get('ids_lines')} lines, "
             f"{meta.get('ids_tokens')} tokens)")
    p.append("")

    # ------------------------------------------------------------ compression
    by = {}
    for c in compress:
        by.setdefault((c["tool"], c["split"]), {})[c["lang"]] = c
    rows = []
    for split in ("in-sample", "held-out"):
        for tool in TOOLS:
            d = by.get((tool, split))
            if not d:
                continue
            bpt = {lang: d[lang]["text_bytes"] / d[lang]["tokens"]
                   for lang in d if d[lang]["tokens"]}
            out["compression"].append({
                "tool": tool, "label": lab[tool], "trained_on": split,
                "bytes_per_token": bpt,
                "text_bytes": {lang: d[lang]["text_bytes"] for lang in d},
                "tokens": {lang: d[lang]["tokens"] for lang in d}})
            trained = ("full corpus (incl. held-out lines)" if split == "in-sample"
                       else "corpus minus held-out lines")
            rows.append([lab[tool], trained] +
                        [f"{bpt[lang]:.3f}" if lang in bpt else "-"
                         for lang in ("en", "ja", "all")])
    p.append("COMPRESSION  UTF-8 bytes per token (higher is better) on the "
             f"held-out lines: last {meta['heldout_lines']} lines of each file "
             f"(at most half a file); en {meta.get('heldout_en_lines')}, "
             f"ja {meta.get('heldout_ja_lines')} lines")
    p.append(fmt_table(["model", "trained on", "en", "ja", "all"], rows,
                       "llrrr"))
    if meta.get("heldout_train") != "1":
        p.append("  held-out variants not trained (--no-heldout-train): "
                 "these numbers are on training text")
    for tool, runs in train_ho.items():
        p.append(f"  held-out variant {lab[tool]}: trained in {runs[0][0]:.2f} s")
    p.append("")

    fixed_notes = [
        "Times are wall-clock on a shared 2-CPU machine; medians hide some "
        "but not all noise.",
        "spm_train (Debian 0.1.97) is run once whatever --reps says (slow).",
        "Python encoders: only the batch encode call is timed (file reading, "
        "model loading and id output are not); tokenmill and spm_encode are "
        "timed as whole processes including model load, input and output.",
        "HF tokenizers is trained with its own BpeTrainer (different merge "
        "rules, no byte pieces in the vocab, no unicode-script splitting), so "
        "its encoder runs a different model of the same nominal size.",
        "Peak RSS: maximum resident set size of the process (GNU time %M), "
        "median over reps; Python rows include the interpreter and the list "
        "of lines.",
    ]
    out["notes"] = notes + fixed_notes
    p.append("NOTES")
    p.extend(f"  - {n}" for n in out["notes"])

    print("\n".join(p))
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
