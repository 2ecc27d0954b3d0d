"""Small HTML formatting helpers shared by the report's files: escaping,
numbers with a dash for unknowns, p-values, colour swatches, figures."""
import html
import math


def esc(x):
    return html.escape(str(x), quote=True)


def f(x, fmt="{:.3f}"):
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else fmt.format(x)


def pct(x):
    return f(x, "{:.1f}%") if x is None else f(100 * x, "{:.1f}%")


def p_value(x):
    if x is None or not math.isfinite(x):
        return "–"
    return "< 0.0001" if x < 1e-4 else f"{x:.4f}"


def ci(x, c, percent=False):
    if x is None or not math.isfinite(x):
        return "–"
    if percent:
        return f"{100 * x:.1f}% [{100 * c[0]:.1f}, {100 * c[1]:.1f}]"
    return f"{x:.3f} [{c[0]:.3f}, {c[1]:.3f}]"


def swatch(colour):
    return f'<span class="swatch" style="background:{colour}"></span>'


def img(rel, alt, caption=None):
    s = f'<p><img class="fig" src="{esc(rel)}" alt="{esc(alt)}"></p>'
    if caption:
        s += f'<p class="cap">{caption}</p>'
    return s
