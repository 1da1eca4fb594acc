"""What the devnet shows: a redrawn table on a terminal, one line per finished height otherwise."""

from __future__ import annotations

import time
from typing import TextIO

from da.devnet.layout import LOOPBACK, Layout, Node
from da.devnet.watch import HeightView, Watcher

REDRAW_SECONDS = 1.0
ROWS_SHOWN = 15


def _cell_verdict(verdict: tuple[str, float] | None) -> str:
    if verdict is None:
        return "-"
    status, confidence = verdict
    if status == "AVAILABLE":
        return f"{confidence:.4f}"
    return {"SAMPLING": "sampling", "UNAVAILABLE": "UNAVAIL"}.get(status, status.lower())


def row_cells(view: HeightView, layout: Layout) -> list[str]:
    encode = "-" if view.encode_seconds is None else f"{view.encode_seconds * 1000:.0f}"
    return [
        str(view.height),
        str(view.k or "-"),
        str(view.blobs),
        str(view.payload_bytes),
        encode,
        f"{len(view.holders)}/{len(layout.storage)}",
        f"{view.signers}/{layout.quorum}",
        *(_cell_verdict(view.verdicts.get(n.name)) for n in layout.light),
    ]


def table_header(layout: Layout) -> list[str]:
    return [
        "height",
        "k",
        "blobs",
        "bytes",
        "encode ms",
        "stored",
        "cert",
        *(n.name for n in layout.light),
    ]


def format_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )


def format_line(view: HeightView, layout: Layout) -> str:
    """One line per finished height (output that is not a terminal)."""
    cells = row_cells(view, layout)
    parts = [
        f"height {cells[0]}",
        f"k {cells[1]}",
        f"blobs {cells[2]}",
        f"bytes {cells[3]}",
        f"encode_ms {cells[4]}",
        f"stored {cells[5]}",
        f"cert {cells[6]}",
    ]
    parts += [f"{n.name} {c}" for n, c in zip(layout.light, cells[7:], strict=True)]
    line = " ".join(parts)
    return line + (f" FAILED: {view.failure}" if view.failure else "")


def status_page(node: Node) -> str:
    """The node's status page (PROTOCOL.md §15); /status.json and /metrics live beside it."""
    return f"http://{LOOPBACK}:{node.metrics_port}/"


def banner(layout: Layout) -> str:
    p = layout.producer
    lines = [
        f"da devnet: chain {layout.chain_id!r}, data dir {layout.root}",
        f"  producer      {p.address}  page {status_page(p)}  quorum {layout.quorum}",
        *(f"  {r.name:<13} {r.address}  page {status_page(r)}" for r in layout.replicas),
        *(f"  {e.name:<13} {e.address}  (etcd member)" for e in layout.etcd),
        *(f"  {s.name:<13} {s.address}  page {status_page(s)}" for s in layout.storage),
        *(f"  {n.name:<13} {n.address}  page {status_page(n)}" for n in layout.light),
        f"  configs {layout.root / 'config'}  logs {layout.root / 'logs'}",
        f"  submit: da blob submit --node {p.address} --namespace demo --file F "
        f"--auth-token-file {layout.token_file} --wait",
    ]
    return "\n".join(lines)


class Display:
    """A redrawn table on a terminal; one line per finished height otherwise."""

    def __init__(self, layout: Layout, out: TextIO) -> None:
        self.layout = layout
        self.out = out
        self.tty = out.isatty()
        self._printed: set[int] = set()
        self._drawn_at = 0.0

    def start(self) -> None:
        if not self.tty:
            print(banner(self.layout), file=self.out, flush=True)

    def update(self, watcher: Watcher, status: str) -> None:
        if self.tty:
            self._redraw(watcher, status)
            return
        for height in sorted(watcher.heights):
            view = watcher.heights[height]
            if view.finished and height not in self._printed:
                self._printed.add(height)
                print(format_line(view, self.layout), file=self.out, flush=True)

    def _redraw(self, watcher: Watcher, status: str) -> None:
        now = time.monotonic()
        if now - self._drawn_at < REDRAW_SECONDS:
            return
        self._drawn_at = now
        views = [watcher.heights[h] for h in sorted(watcher.heights)[-ROWS_SHOWN:]]
        rows = [table_header(self.layout), *(row_cells(v, self.layout) for v in views)]
        screen = f"{banner(self.layout)}\n\n{format_table(rows)}\n\n{status}  (Ctrl-C stops)\n"
        self.out.write("\x1b[H\x1b[2J" + screen)
        self.out.flush()
