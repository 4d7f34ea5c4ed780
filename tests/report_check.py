#!/usr/bin/env python3
"""report_check.py - checks the HTML page of `tokenmill analyze report`.

    report_check.py svg REPORT.html          each inline <svg> is well-formed XML
                                             with numeric rect geometry
    report_check.py render REPORT.html SHOT.png
                                             a browser screenshot of the page
                                             shows every SVG bar as drawn

The render check reads the <rect>s of the page's SVG charts (fill colour,
x, y, width, height) and finds every pixel of each fill colour in the PNG:
each rect at least 1 px wide must appear as one solid rectangle of its size
(+-1 px for a fractional width), at the same offsets from its chart's first
rect as in the SVG, with text (its value or legend name) right of it; the
page must not be blank, must end above the bottom of the window (nothing cut
off) and must show text after the last chart. Exit 0, or 1 with one line per
problem. Needs only the standard library (Pillow is used if present)."""
import re
import sys
import xml.etree.ElementTree as ET
import zlib

SVG = "{http://www.w3.org/2000/svg}"


def svgs(html_path):
    """[(chart index, [rect dicts])] from the page's inline SVGs; raises
    ValueError naming the chart and problem for malformed markup."""
    text = open(html_path, encoding="utf-8").read()
    out = []
    for i, m in enumerate(re.finditer(r"<svg\b.*?</svg>", text, re.S)):
        line = text.count("\n", 0, m.start()) + 1
        try:
            root = ET.fromstring(m.group(0))
        except ET.ParseError as e:
            raise ValueError(f"{html_path}:{line}: chart {i + 1} is not well-formed: {e}")
        if root.tag != SVG + "svg":
            raise ValueError(f"{html_path}:{line}: chart {i + 1}: root is {root.tag}, not an SVG svg element")
        rects = []
        children = list(root)
        for j, el in enumerate(children):
            if el.tag != SVG + "rect":
                continue
            try:
                r = {k: float(el.get(k)) for k in ("x", "y", "width", "height")}
            except (TypeError, ValueError):
                raise ValueError(f"{html_path}:{line}: chart {i + 1}: rect {len(rects) + 1} has missing or "
                                 f"non-numeric geometry {el.attrib}")
            fill = el.get("fill", "")
            if not re.fullmatch(r"#[0-9a-fA-F]{6}", fill):
                raise ValueError(f"{html_path}:{line}: chart {i + 1}: rect fill {fill!r} is not #rrggbb")
            r["fill"] = fill.lower()
            nxt = children[j + 1] if j + 1 < len(children) else None
            r["label"] = (nxt.text or "").strip() if nxt is not None and nxt.tag == SVG + "text" else ""
            r["chart"] = i
            rects.append(r)
        out.append((i, rects))
    if not out:
        raise ValueError(f"{html_path}: no inline <svg> chart")
    return out


def read_png(path):
    """(width, height, rows): rows[y] = bytes, 3 per pixel (RGB)."""
    try:
        from PIL import Image
        im = Image.open(path).convert("RGB")
        w, h = im.size
        data = im.tobytes()
        return w, h, [data[y * w * 3:(y + 1) * w * 3] for y in range(h)]
    except ImportError:
        pass
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            hdr = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    w, h = int.from_bytes(hdr[0:4], "big"), int.from_bytes(hdr[4:8], "big")
    depth, ctype, interlace = hdr[8], hdr[9], hdr[12]
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError(f"{path}: PNG depth {depth}, colour type {ctype}, interlace {interlace}: "
                         "only 8-bit RGB/RGBA, not interlaced, without Pillow")
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(h):
        f = raw[y * (stride + 1)]
        cur = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                cur[i] = (cur[i] + cur[i - bpp]) & 255
        elif f == 2:
            for i in range(stride):
                cur[i] = (cur[i] + prev[i]) & 255
        elif f == 3:
            for i in range(stride):
                cur[i] = (cur[i] + ((cur[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 255
        elif f == 4:
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rgb = bytearray(cur)
        if bpp == 4:
            del rgb[3::4]
        rows.append(bytes(rgb))
        prev = cur
    return w, h, rows


def components(rows, rgb):
    """Connected runs of exactly the colour rgb: [(top, left, bottom, right, pixels)], inclusive."""
    pat = bytes(rgb)
    comps, parent = [], []

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    prev_runs = []
    for y, row in enumerate(rows):
        runs, i = [], row.find(pat)
        while i >= 0:
            if i % 3:
                i = row.find(pat, i + 1)
                continue
            x0 = x = i // 3
            while row[3 * (x + 1):3 * (x + 2)] == pat:
                x += 1
            cid = len(comps)
            comps.append([y, x0, y, x, x - x0 + 1])
            parent.append(cid)
            for (px0, px1, pid) in prev_runs:
                if px0 <= x and x0 <= px1:
                    a, b = find(pid), find(cid)
                    if a != b:
                        parent[b] = a
            runs.append((x0, x, cid))
            i = row.find(pat, 3 * (x + 1))
        prev_runs = runs
    merged = {}
    for cid, (t, l, b, r, n) in enumerate(comps):
        root = find(cid)
        if root in merged:
            m = merged[root]
            m[0], m[1], m[2], m[3], m[4] = min(m[0], t), min(m[1], l), max(m[2], b), max(m[3], r), m[4] + n
        else:
            merged[root] = [t, l, b, r, n]
    return sorted(tuple(m) for m in merged.values())


def dark(rows, y0, y1, x0, x1):
    n = 0
    for y in range(max(y0, 0), min(y1, len(rows) - 1) + 1):
        row = rows[y]
        for x in range(max(x0, 0), min(x1, len(row) // 3 - 1) + 1):
            if max(row[3 * x:3 * x + 3]) < 140:
                n += 1
    return n


def check_render(html_path, png_path):
    charts = svgs(html_path)
    w, h, rows = read_png(png_path)
    errs = []
    white = b"\xff\xff\xff"
    content = [y for y, row in enumerate(rows) if row.strip(white) != b""]  # strip works per byte; 0xff only
    nonwhite = sum(1 for row in rows for x in range(0, len(row), 3) if row[x:x + 3] != white)
    print(f"# {png_path}: {w}x{h}, {100.0 * nonwhite / (w * h):.2f}% non-white, content rows "
          f"{content[0] if content else '-'}..{content[-1] if content else '-'}")
    if nonwhite < w * h // 200:
        return [f"{png_path}: the page is (nearly) blank: {nonwhite} non-white pixels"]
    if content[-1] >= h - 8:
        errs.append(f"{png_path}: content reaches the bottom of the {h} px window (row {content[-1]}): "
                    "the page is cut off; take a taller screenshot")
    by_color = {}
    for _, rects in charts:
        for r in rects:
            by_color.setdefault(r["fill"], []).append(r)
    placed = []  # (rect, component)
    for fill, rects in sorted(by_color.items()):
        rgb = bytes.fromhex(fill[1:])
        want = [r for r in rects if r["width"] >= 1]
        got = components(rows, rgb)
        area = sum(c[4] for c in got)
        exp_area = sum(int(r["width"]) * int(r["height"]) for r in want)
        print(f"# {fill}: {len(want)} rects >= 1 px wide in the SVG, {len(got)} drawn; "
              f"{area} pixels of the colour, {exp_area} expected")
        if len(got) != len(want):
            errs.append(f"{fill}: {len(want)} rects at least 1 px wide in the SVG, {len(got)} solid areas of "
                        f"that colour in the screenshot")
            continue
        # the page stacks charts top to bottom and rects go down within a chart
        want.sort(key=lambda r: (r["chart"], r["y"], r["x"]))
        for r, c in zip(want, got):
            t, l, b, rt, n = c
            cw, ch = rt - l + 1, b - t + 1
            where = f"{fill} chart {r['chart'] + 1} rect at y={r['y']:g} ({r['label'] or 'no label'})"
            if abs(cw - r["width"]) > 1 or ch != int(r["height"]):
                errs.append(f"{where}: drawn {cw}x{ch} px, SVG says {r['width']:g}x{r['height']:g}")
            elif n != cw * ch:
                errs.append(f"{where}: drawn with holes ({n} of {cw * ch} pixels have the colour)")
            if r["label"] and dark(rows, t, b, rt + 2, rt + 40) < 4:
                errs.append(f"{where}: no text drawn right of it (its label {r['label']!r})")
            placed.append((r, c))
    # offsets from each chart's first rect, as in the SVG
    first = {}
    for r, c in sorted(placed, key=lambda p: (p[0]["chart"], p[0]["y"], p[0]["x"])):
        r0, c0 = first.setdefault(r["chart"], (r, c))
        dy, dx = c[0] - c0[0], c[1] - c0[1]
        if abs(dy - (r["y"] - r0["y"])) > 1 or abs(dx - (r["x"] - r0["x"])) > 1:
            errs.append(f"chart {r['chart'] + 1}: rect at x={r['x']:g} y={r['y']:g} drawn at offset ({dx}, {dy}) "
                        f"from the chart's first rect, SVG says ({r['x'] - r0['x']:g}, {r['y'] - r0['y']:g})")
    tops = [first[k][1][0] for k in sorted(first)]
    if tops != sorted(tops):
        errs.append(f"charts drawn out of document order (first rows {tops})")
    if len(first) != len(charts):
        errs.append(f"{len(charts)} charts in the page, {len(first)} with bars drawn")
    if placed:
        last = max(c[2] for _, c in placed)
        if not content or content[-1] <= last + 5:
            errs.append(f"nothing drawn below the last chart (row {last}): the closing paragraph is missing")
    return errs


def main(argv):
    try:
        if len(argv) == 3 and argv[1] == "svg":
            n = sum(len(r) for _, r in svgs(argv[2]))
            print(f"# {argv[2]}: {len(svgs(argv[2]))} charts, {n} rects, well-formed")
            return 0
        if len(argv) == 4 and argv[1] == "render":
            errs = check_render(argv[2], argv[3])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (OSError, ValueError) as e:
        errs = [str(e)]
    for e in errs:
        print("error: " + e)
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
