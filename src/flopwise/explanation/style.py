"""How an explanation is written: plain text for the console, or Markdown with the formulas in inline math."""

from __future__ import annotations

import re

from .steps import Step

_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Text:
    """Plain text for the console."""

    def math(self, s: str) -> str:
        return s

    def equation(self, name: str, step: Step) -> str:
        chain = [step.expr]
        if step.substituted != step.expr:
            chain.append(step.substituted)
        if step.parts:
            chain.append(" + ".join(f"{p:,}" for p in step.parts))
        if chain[-1] != f"{step.value:,}":
            chain.append(f"{step.value:,}")
        return f"{name} = " + " = ".join(chain)

    def inline(self, s: str) -> str:
        return s

    def heading(self, s: str) -> str:
        return s

    def title(self, name: str, rest: str) -> str:
        return name + rest

    def item(self, s: str, level: int = 0) -> str:
        return "  " * level + s


class Markdown(Text):
    """Markdown with the formulas in inline math, for notebooks and docs."""

    def math(self, s: str) -> str:
        def symbol(m: re.Match[str]) -> str:
            name = m.group(0)
            head, _, sub = name.partition("_")
            if len(name) == 1:
                return name
            if len(head) == 1 and sub:
                return f"{head}_{{{sub}}}" if len(sub) == 1 else f"{head}_{{\\mathrm{{{sub}}}}}"
            return r"\mathrm{" + name.replace("_", r"\_") + "}"

        s = _SYMBOL.sub(symbol, s)
        s = re.sub(r"(?<=\d),(?=\d{3})", "{,}", s)
        s = re.sub(r"(\\mathrm\{[^}]*\}) (?=[A-Za-z\\(\d])", r"\1\\;", s)  # 'bias N·C' keeps its space
        return s.replace("·", r" \cdot ").replace("−", "-").replace("×", r" \times ").replace("ᵀ", "^T")

    def equation(self, name: str, step: Step) -> str:
        chain = super().equation("", step).removeprefix(" = ")
        return f"{name} $= {self.math(chain)}$"

    def inline(self, s: str) -> str:
        return f"${self.math(s)}$"

    def heading(self, s: str) -> str:
        return f"### {s}"

    def title(self, name: str, rest: str) -> str:
        return f"**{name}**{rest}"

    def item(self, s: str, level: int = 0) -> str:
        return "  " * level + "- " + s
