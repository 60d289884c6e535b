"""Offline HTML galleries: one ``index.html`` per output folder, images referenced relatively."""

import html
import os
from dataclasses import dataclass, field
from pathlib import Path

from bridgenet_cli.io import atomic_write_text


@dataclass
class GalleryItem:
    """One picture inside the gallery folder (path absolute or from the working directory)."""

    path: Path
    caption: str = ""


@dataclass
class GallerySection:
    """A titled group of pictures, with an optional paragraph of explanation."""

    title: str
    items: list[GalleryItem] = field(default_factory=list)
    note: str = ""


_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
p.note { color: #555; max-width: 60em; }
div.grid { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; background: #fff; padding: 0.5em; border: 1px solid #ddd; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 0.85em; color: #444; margin-top: 0.3em; }
"""


def write_gallery(
    folder: str | Path, title: str, sections: list[GallerySection], intro: str = ""
) -> Path:
    """Write ``folder/index.html`` showing every section's pictures; returns its path.

    Pictures must lie inside ``folder``; they are referenced by relative paths so that the page
    opens offline and still works when the folder is moved or copied. The page has no scripts
    and no external resources.
    """
    folder = Path(folder)
    body: list[str] = [f"<h1>{html.escape(title)}</h1>"]
    if intro:
        body.append(f'<p class="note">{html.escape(intro)}</p>')

    for section in sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.note:
            body.append(f'<p class="note">{html.escape(section.note)}</p>')
        body.append('<div class="grid">')
        for item in section.items:
            href = html.escape(_relative_url(folder, item.path), quote=True)
            alt = html.escape(item.caption or Path(item.path).stem, quote=True)
            caption = html.escape(item.caption)
            body.append(
                f'<figure><a href="{href}"><img src="{href}" alt="{alt}" loading="lazy"></a>'
                f"<figcaption>{caption}</figcaption></figure>"
            )
        body.append("</div>")

    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
    path = folder / "index.html"
    atomic_write_text(path, page)
    return path


def _relative_url(folder: Path, path: Path) -> str:
    """``path`` (absolute or relative to the working directory) relative to ``folder``."""
    relative = os.path.relpath(Path(path).resolve(), folder.resolve())
    if relative.startswith(".."):
        raise ValueError(f"{path} is outside the gallery folder {folder}")
    return Path(relative).as_posix()
