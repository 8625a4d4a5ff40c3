"""An offline, axe-style WCAG 2.1 AA contrast check for any page in the browser tests.

    failures = await contrast_failures(page)        # or: await assert_contrast(page)

Every visible element with its own text (and every shown placeholder) is measured in the
page itself: the text colour (alpha and the opacity of the element and its ancestors
applied) against the effective background, found by walking up the ancestors and
compositing their background colours until an opaque one (the canvas is white). The
ratio is WCAG's ((L1 + 0.05) / (L2 + 0.05)); AA asks 4.5:1, or 3:1 for large text
(at least 24 px, or 18.66 px bold). Elements over a background image are reported as
``unknown`` instead of guessed. Nothing is downloaded: the check is this file.
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import Frame, Page

_SCRIPT = r"""
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const over = (top, bottom) => {  // top composited over an opaque bottom
    const a = top.a;
    return { r: top.r * a + bottom.r * (1 - a), g: top.g * a + bottom.g * (1 - a), b: top.b * a + bottom.b * (1 - a), a: 1 };
  };
  const lum = (c) => {
    const ch = [c.r, c.g, c.b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2];
  };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const background = (el) => {
    const layers = [];
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
      const s = getComputedStyle(n);
      if (s.backgroundImage && s.backgroundImage !== "none") return null;
      const c = parse(s.backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let bg = { r: 255, g: 255, b: 255, a: 1 };
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  };
  const opacity = (el) => { let o = 1; for (let n = el; n && n.nodeType === 1; n = n.parentElement) o *= Number(getComputedStyle(n).opacity); return o; };
  const visible = (el) => {
    const s = getComputedStyle(el);
    if (s.visibility !== "visible" || s.display === "none") return false;
    const r = el.getBoundingClientRect();
    return r.width > 2 && r.height > 2 && el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true });
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : "");
  const results = [];
  const measure = (el, text, colour) => {
    const s = getComputedStyle(el);
    const bg = background(el);
    const size = parseFloat(s.fontSize), bold = Number(s.fontWeight) >= 700;
    const large = size >= 24 || (size >= 18.66 && bold);
    const required = large ? 3 : 4.5;
    if (!bg) { results.push({ element: name(el), text, ratio: null, required, status: "unknown" }); return; }
    const fg = parse(colour);
    fg.a *= opacity(el);
    const value = ratio(over(fg, bg), bg);
    results.push({ element: name(el), text: text.slice(0, 60), ratio: Math.round(value * 100) / 100, required,
                   status: value + 1e-9 >= required ? "pass" : "fail",
                   fg: colour, bg: `rgb(${Math.round(bg.r)}, ${Math.round(bg.g)}, ${Math.round(bg.b)})` });
  };
  for (const el of document.body.querySelectorAll("*")) {
    if (["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "IFRAME"].includes(el.tagName) || !visible(el)) continue;
    const own = Array.from(el.childNodes).filter((n) => n.nodeType === 3).map((n) => n.textContent).join("").trim();
    if (own) measure(el, own, getComputedStyle(el).color);
    if ((el.tagName === "INPUT" || el.tagName === "TEXTAREA") && el.placeholder && !el.value)
      measure(el, "placeholder: " + el.placeholder, getComputedStyle(el, "::placeholder").color);
    if (el.tagName === "INPUT" && el.value && !["hidden", "file", "checkbox", "radio"].includes(el.type))
      measure(el, el.value, getComputedStyle(el).color);
  }
  return results;
}
"""


async def contrast_report(target: Page | Frame) -> list[dict[str, Any]]:
    """Every visible text of the page (or frame) with its contrast ratio and the AA minimum."""
    result: list[dict[str, Any]] = await target.evaluate(_SCRIPT)
    return result


async def contrast_failures(target: Page | Frame) -> list[dict[str, Any]]:
    """The texts below WCAG 2.1 AA (or over a background image, where the ratio is unknown)."""
    return [r for r in await contrast_report(target) if r["status"] != "pass"]


async def assert_contrast(target: Page | Frame, *, at_least: int = 1) -> list[dict[str, Any]]:
    """Fail with the offending elements; returns the report (``at_least`` texts must be measured)."""
    report = await contrast_report(target)
    failures = [r for r in report if r["status"] != "pass"]
    assert len(report) >= at_least, f"only {len(report)} texts measured"
    assert not failures, "WCAG AA contrast failures:\n" + "\n".join(
        f"  {f['element']} {f['text']!r}: {f['ratio']} < {f['required']} (fg {f.get('fg')}, bg {f.get('bg')})"
        for f in failures)
    return report
