"""The id rule over whole Arrow columns: stripped, never missing, never repeated within one stream of chunks.

Shared by the table adapter (one stream: the whole table) and the rows adapter (one stream: a file scored in
chunks, ``SeenIds`` carried from chunk to chunk), so ``tabrepro score`` refuses every repeat ``prepare`` refuses,
naming the row that had the id first.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tabrepro.contract.columns import Failure, as_mask, failure_at, text, token_set
from tabrepro.contract.grammar import DUPLICATE, MISSING, WHITESPACE, IdRule


@dataclass(frozen=True)
class IdVerdict:
    """The stripped ids (null when missing) and the rows refused."""

    ids: pa.Array
    failures: list[Failure]


def check_ids(column: pa.ChunkedArray | pa.Array, rule: IdRule, seen: SeenIds, numbers: np.ndarray) -> IdVerdict:
    """Strip the ids, refuse the missing ones and the repeats (of this column, or of what ``seen`` holds);
    ``numbers`` are the rows' numbers, remembered in ``seen`` and named in a repeat's message."""
    raw = text(column)
    stripped = pc.utf8_trim(raw, characters=WHITESPACE)
    missing = pc.or_kleene(pc.is_null(raw), pc.is_in(stripped, value_set=token_set(rule.missing)))
    ids = pc.if_else(missing, pa.scalar(None, pa.string()), stripped)
    failures = [failure_at(MISSING, as_mask(missing), raw)]
    rows, firsts = seen.add(ids, numbers)
    if rows.size:
        failures.append(Failure(DUPLICATE, rows, raw.take(pa.array(rows)).to_pylist(), firsts))
    return IdVerdict(ids, [f for f in failures if f.rows.size])


class SeenIds:
    """Every id seen so far in one stream of chunks, to refuse a repeat with the number of the row that had it first.

    Ids are remembered as 64-bit hashes: sorted runs that merge as they grow (to look a chunk up), and each chunk's
    hashes with their row numbers (to name the first row of a repeat, looked for only when there is one): 24 bytes
    an id, never the ids themselves. Two different ids share a hash with probability about n² / 2⁶⁵ (3e-8 for a
    million ids); the later one would be refused as a repeat.
    """

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []  # sorted, unique within a run, sizes decreasing
        self._chunks: list[tuple[np.ndarray, np.ndarray]] = []  # (hashes, numbers) in row order

    def add(self, ids: pa.Array, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Remember the non-null ``ids``; return the positions of repeats and the number each repeats."""
        rows = np.flatnonzero(as_mask(pc.is_valid(ids)))
        hashes = hash_texts(ids)[rows]
        ordered = np.sort(hashes)
        repeated = ordered[1:][ordered[1:] == ordered[:-1]]
        earlier = [ordered[_found(run, ordered)] for run in self._runs]
        suspects = np.unique(np.concatenate([repeated, *earlier]))
        result = self._repeats(hashes, rows, numbers[rows], suspects) if suspects.size else (rows[:0], rows[:0])
        self._chunks.append((hashes, numbers[rows]))
        self._push(ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if ordered.size else ordered)
        return result

    def _repeats(
        self, hashes: np.ndarray, rows: np.ndarray, numbers: np.ndarray, suspects: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The rows of this chunk whose id an earlier row had, and that row's number (earliest first)."""
        pairs = [(h[m], n[m]) for h, n in [*self._chunks, (hashes, numbers)] if (m := np.isin(h, suspects)).any()]
        seen, first = np.unique(np.concatenate([h for h, _ in pairs]), return_index=True)
        first_number = np.concatenate([n for _, n in pairs])[first]
        mine = np.isin(hashes, suspects)
        firsts = first_number[np.searchsorted(seen, hashes[mine])]
        repeat = firsts != numbers[mine]
        return rows[mine][repeat], firsts[repeat]

    def _push(self, run: np.ndarray) -> None:
        self._runs.append(run)
        while len(self._runs) > 1 and self._runs[-2].size <= 2 * self._runs[-1].size:
            newer, older = self._runs.pop(), self._runs.pop()
            self._runs.append(np.sort(np.concatenate([older, newer]), kind="stable"))  # merges two sorted runs


def _found(run: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """Which of the sorted ``ordered`` hashes the sorted ``run`` holds."""
    at = np.minimum(np.searchsorted(run, ordered), run.size - 1)
    return run[at] == ordered if run.size else np.zeros(ordered.size, dtype=bool)


def hash_texts(texts: pa.Array) -> np.ndarray:
    """A 64-bit hash of each string (a null hashes as ""): the sum of a fixed pseudo-random weight per byte
    position times the byte, plus one for the length (multilinear hashing, modulo 2**64), computed on the Arrow
    buffers without making a Python string."""
    texts = text(texts)
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int32)[texts.offset : texts.offset + len(texts) + 1]
    data = texts.buffers()[2]
    body = np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]] if data else np.empty(0, np.uint8)
    starts, lengths = offsets[:-1] - offsets[0], np.diff(offsets)
    weights = _weights(int(lengths.max(initial=0)) + 1)
    hashes: np.ndarray = weights[0] * lengths.astype(np.uint64)
    if lengths.size and lengths.min() == lengths.max() and lengths[0] > 0:  # fixed-width ids: column by column
        grid = body.reshape(-1, lengths[0])
        for position in range(lengths[0]):
            hashes += (grid[:, position].astype(np.uint64) + np.uint64(1)) * weights[position + 1]
        return hashes
    position = np.arange(body.size) - np.repeat(starts, lengths)
    terms = (body.astype(np.uint64) + np.uint64(1)) * weights[position + 1]  # wraps modulo 2**64, as meant
    sums = np.concatenate([np.zeros(1, np.uint64), np.cumsum(terms, dtype=np.uint64)])
    hashes = hashes + sums[starts + lengths] - sums[starts]
    return hashes


def _weights(size: int) -> np.ndarray:
    """The weights of byte positions 0..size-1 (a cached table of a power-of-two size)."""
    return _weights_table(max(64, 1 << (size - 1).bit_length()))


@functools.cache
def _weights_table(size: int) -> np.ndarray:
    """splitmix64 of each position: the same weight for a position whatever the table's size."""
    z = np.arange(size, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))
