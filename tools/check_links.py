"""Check, offline, that every relative link and `#anchor` in the project's Markdown resolves.

A link to a file or folder must name one that exists (relative to the Markdown file); an anchor must be the
GitHub slug of a heading of the file it points to (or an explicit `<a id=...>` / `name=...`). Web links are not
fetched. Code blocks and code spans are skipped. Exit 0 when every link resolves, 1 when one does not (each
printed as file:line), 2 when a file given on the command line cannot be read.

    python tools/check_links.py            # README.md, CONTRIBUTING.md, CHANGELOG.md and docs/*.md
    python tools/check_links.py FILE ...   # only these
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILES = ("README.md", "CONTRIBUTING.md", "CHANGELOG.md", "docs/*.md")

_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_HTML_ANCHOR = re.compile(r"<a\s[^>]*\b(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass(frozen=True)
class Broken:
    where: str  # file:line
    target: str
    reason: str


def slugify(heading: str) -> str:
    """GitHub's anchor for a heading: its rendered text, lower case, punctuation dropped, spaces to hyphens."""
    text = _CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link renders as its text
    text = re.sub(r"<[^>]+>", "", text)  # html tags render as nothing
    text = re.sub(r"(\*+|(?<!\w)_+|_+(?!\w))", "", text)  # emphasis markers, not underscores inside words
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def _prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of every line outside fenced code blocks."""
    fence = ""
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FENCE.match(line)
        if match and (not fence or match.group(1) == fence):
            fence = "" if fence else match.group(1)
            continue
        if not fence:
            yield number, line


def anchors(text: str) -> set[str]:
    """Every anchor a Markdown text defines: heading slugs (repeats numbered -1, -2, ...) and explicit ids."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in _prose_lines(text):
        found.update(_HTML_ANCHOR.findall(line))
        if match := _HEADING.match(line):
            slug = slugify(match.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(text: str) -> Iterator[tuple[int, str]]:
    """(line number, target) of every inline link, image and reference definition outside code."""
    for number, line in _prose_lines(text):
        if match := _REFERENCE_DEF.match(line):
            yield number, match.group(1)
            continue
        for target in _INLINE_LINK.findall(_CODE_SPAN.sub("", line)):
            yield number, target


def check_file(path: Path, *, root: Path) -> list[Broken]:
    """The links of one Markdown file that do not resolve."""
    text = path.read_text(encoding="utf-8")
    broken = []
    for number, target in links(text):
        if not target or _SCHEME.match(target) or target.startswith("//"):
            continue  # web links and mailto: are not fetched
        if reason := _resolve(path, unquote(target), text, root=root):
            broken.append(Broken(f"{path.relative_to(root)}:{number}", target, reason))
    return broken


def _resolve(source: Path, target: str, text: str, *, root: Path) -> str:
    """Why `target`, linked from `source`, does not resolve ("" when it does)."""
    name, _, anchor = target.partition("#")
    if name.startswith("/"):
        return "an absolute path: GitHub resolves it from the site, not the repository; use a relative path"
    path = (source.parent / name).resolve() if name else source
    if not path.exists():
        return f"no such file or folder: {path.relative_to(root) if path.is_relative_to(root) else path}"
    if not anchor or path.suffix.lower() != ".md":
        return ""
    defined = anchors(text if path == source else path.read_text(encoding="utf-8"))
    if anchor not in defined:
        return f"no heading with the anchor #{anchor} in {path.relative_to(root)}"
    return ""


def default_files(root: Path) -> list[Path]:
    return sorted({p for pattern in DEFAULT_FILES for p in root.glob(pattern)})


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    files = [Path(a).resolve() for a in args] if args else default_files(ROOT)
    unreadable = [str(f) for f in files if not f.is_file()]
    if unreadable:
        print(f"check_links: cannot read {', '.join(unreadable)}", file=sys.stderr)
        return 2
    root = Path.cwd().resolve() if args else ROOT
    root = root if all(f.is_relative_to(root) for f in files) else Path("/")
    broken = [b for f in files for b in check_file(f, root=root)]
    for b in broken:
        print(f"{b.where}: broken link {b.target!r}: {b.reason}")
    print(f"check_links: {len(files)} files, {len(broken)} broken links", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
