"""Columnar readers of ranked-list files: TREC runs and DCASE submissions, into :class:`Lists`.

A Clotho-sized TREC run (5,225 captions x 1,045 files, 5.5 M lines) is read by pyarrow's CSV
reader into dictionary-encoded columns, so the ids are matched once per distinct id, and every
check (unknown ids, duplicates, ranks against scores, list lengths) is a numpy operation over
whole columns: no Python code runs per line. The grammar of each format is in ``docs/formats.md``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd

from bench.errors import DataError
from bench.evaluation.metrics import MAP_CUTOFF
from bench.results.score_lists import Lists, Truth, audio_indices, caption_indices, rows_of_captions

TREC_COLUMNS = ("qid", "q0", "docid", "rank", "score", "tag")


def trec_id(ids: np.ndarray) -> np.ndarray:
    """Ids as written in a TREC file: ``%`` and every whitespace character percent-encoded (UTF-8), so that
    file names with spaces stay one field; :func:`urllib.parse.unquote` reverses it."""
    def encode(text: str) -> str:
        if "%" not in text and not any(ch.isspace() for ch in text):
            return text
        return "".join(quote(ch, safe="") if ch == "%" or ch.isspace() else ch for ch in text)

    return np.asarray([encode(str(i)) for i in np.asarray(ids).ravel()], dtype=object).astype(str)


def _delimiter(path: Path) -> str:
    with open(path, "rb") as handle:
        first = handle.readline().decode("utf-8", errors="replace").rstrip("\r\n")
    if not first.strip():
        raise DataError(f"{path}: the first line is empty; a TREC run has one 'QID Q0 DOCID RANK SCORE TAG' per line")
    return "\t" if "\t" in first else " "


def read_trec_columns(path: Path) -> dict[str, np.ndarray]:
    """``qid``/``docid`` as (codes, distinct decoded ids), ``rank`` int64, ``score`` float64, one row per line."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    words = pa.dictionary(pa.int32(), pa.string())
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=list(TREC_COLUMNS), block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=_delimiter(path), quote_char=False, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={"qid": words, "docid": words, "rank": pa.int64(), "score": pa.float64()},
                include_columns=["qid", "docid", "rank", "score"], strings_can_be_null=False,
                quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        message = " ".join(str(exc).split())[:300]
        raise DataError(f"{path}: not a TREC run ({message}); each line is 'QID Q0 DOCID RANK SCORE TAG', "
                        "fields separated by one space or one tab, RANK an integer, SCORE a number") from None
    table = table.unify_dictionaries()
    out: dict[str, np.ndarray] = {}
    for name in ("qid", "docid"):
        column = table.column(name).combine_chunks()
        if isinstance(column, pa.ChunkedArray):  # an empty file: no chunk to combine
            column = column.chunk(0) if column.num_chunks else pa.array([], words)
        out[name] = column.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        out[name + "_ids"] = np.asarray([unquote(v) for v in column.dictionary.to_pylist()], dtype=object)
    out["rank"] = table.column("rank").to_numpy().astype(np.int64)
    out["score"] = table.column("score").to_numpy().astype(np.float64)
    return out


def _check_rank_order(lists: Lists, rank: np.ndarray, source: str) -> None:
    """Raise where a better rank carries a lower score within one query (trec_eval would reorder it)."""
    q, s = lists.q, lists.s
    same = q[1:] == q[:-1]
    if not (same & (rank[1:] <= rank[:-1])).any():  # file order is rank order (the usual case): no sort
        order = None
        bad = same & (s[1:] > s[:-1])
    else:
        order = np.lexsort((-s, rank, q))  # by query, rank, then score down: adjacent pairs suffice
        qo, ro, so = q[order], rank[order], s[order]
        bad = (qo[1:] == qo[:-1]) & (ro[1:] > ro[:-1]) & (so[1:] > so[:-1])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        lo, hi = (i, i + 1) if order is None else (int(order[i]), int(order[i + 1]))
        raise DataError(f"{source} line {lists.line[hi]}: rank {rank[hi]} has score {float(s[hi])!r}, higher than "
                        f"{float(s[lo])!r} at rank {rank[lo]} (line {lists.line[lo]}) of the same query; ranks must "
                        "follow scores (bench orders by score): fix the ranks or the scores")


def read_trec(path: str | Path, truth: Truth) -> dict[str, Lists]:
    """The lists of a TREC run, per direction present: t2a lines have a caption id as QID and a
    file name as DOCID, a2t lines the reverse. Unknown ids and contradicting ranks raise one line."""
    path = Path(path)
    cols = read_trec_columns(path)
    qcap = caption_indices(cols["qid_ids"], truth)[cols["qid"]] if cols["qid"].size else cols["qid"]
    qaud = audio_indices(cols["qid_ids"], truth)[cols["qid"]] if cols["qid"].size else cols["qid"]
    dcap = caption_indices(cols["docid_ids"], truth)[cols["docid"]] if cols["docid"].size else cols["docid"]
    daud = audio_indices(cols["docid_ids"], truth)[cols["docid"]] if cols["docid"].size else cols["docid"]
    if not cols["qid"].size:
        raise DataError(f"{path}: empty TREC run; each line is 'QID Q0 DOCID RANK SCORE TAG'")
    line = np.arange(1, cols["qid"].size + 1)
    unknown_q = (qcap < 0) & (qaud < 0)
    if unknown_q.any():
        i = int(np.flatnonzero(unknown_q)[0])
        qid = str(cols["qid_ids"][cols["qid"][i]])
        raise DataError(f"{path} line {i + 1}: query id {qid!r} is neither a caption id "
                        f"nor a file name of {truth.dataset}/test; caption ids are '<file name>#<caption index>' "
                        f"(`bench score --template trec --dataset {truth.dataset}` lists them)")
    t2a = qcap >= 0
    bad_doc = np.where(t2a, daud < 0, dcap < 0)
    if bad_doc.any():
        i = int(np.flatnonzero(bad_doc)[0])
        wanted = "a file name" if t2a[i] else "a caption id"
        docid = str(cols["docid_ids"][cols["docid"][i]])
        raise DataError(f"{path} line {i + 1}: document {docid!r} is not {wanted} of "
                        f"{truth.dataset}/test (the query is {'a caption' if t2a[i] else 'a file'}); check the ids")
    out: dict[str, Lists] = {}
    for direction, mask, q, d in (("t2a", t2a, qcap, daud), ("a2t", ~t2a, qaud, dcap)):
        if not mask.any():
            continue
        rows = slice(None) if mask.all() else mask  # no copy for a file of one direction
        lists = Lists(direction, q[rows], d[rows], cols["score"][rows], line[rows])
        _check_rank_order(lists, cols["rank"][rows], str(path))
        out[direction] = lists
    return out


def read_dcase(path: str | Path, truth: Truth) -> dict[str, Lists]:
    """A DCASE submission: ``caption,fname_1,...,fname_10`` per caption (header optional), t2a only.

    The caption column holds the caption text (as DCASE asks) or a caption id. Position k in the
    row is rank k; the score used is ``10 - k`` (distinct, so no ties).
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        message = " ".join(str(exc).split())[:200]
        raise DataError(f"{path}: not a DCASE submission CSV ({message}); each row is caption,fname_1,...,fname_10") \
            from None
    first_line = 1
    if frame.shape[0] and str(frame.iat[0, 0]).strip().lower() == "caption":
        frame, first_line = frame.iloc[1:], 2
    if frame.shape[0] == 0:
        raise DataError(f"{path}: no rows; each row is caption,fname_1,...,fname_10")
    need = min(MAP_CUTOFF, truth.n_audios)
    names = frame.iloc[:, 1:].to_numpy(dtype=object).astype(str)
    if names.shape[1] > need:
        extra = (names[:, need:] != "").any(axis=1)
        if extra.any():
            r = int(np.flatnonzero(extra)[0])
            raise DataError(f"{path} line {r + first_line}: more than {need} file names; a DCASE row lists exactly "
                            f"the top {need} (fname_1 ... fname_{need})")
        names = names[:, :need]
    filled = (names != "").sum(axis=1)
    if names.shape[1] < need or (filled < need).any():
        r = int(np.flatnonzero(filled < need)[0]) if names.shape[1] == need else 0
        raise DataError(f"{path} line {r + first_line}: {int(filled[r])} file name(s); bench needs the top {need} "
                        f"files of every caption (R@10 and mAP@10): fname_1 ... fname_{need}")
    found = audio_indices(names.ravel(), truth).reshape(names.shape)
    if (found < 0).any():
        r, k = (int(v) for v in np.argwhere(found < 0)[0])
        raise DataError(f"{path} line {r + first_line}: fname_{k + 1} {str(names[r, k])!r} is not a file name of "
                        f"{truth.dataset}/test (e.g. {str(truth.audio_ids[0])!r})")
    srt = np.sort(found, axis=1)
    repeated = (srt[:, 1:] == srt[:, :-1]).any(axis=1)
    if repeated.any():
        r = int(np.flatnonzero(repeated)[0])
        raise DataError(f"{path} line {r + first_line}: a file is listed twice for caption {str(frame.iat[r, 0])!r}; "
                        "list each file once per row")
    row = rows_of_captions(frame.iloc[:, 0].to_numpy(dtype=object), truth, str(path), "data row")
    row_line = row + first_line - 1  # row[c] is 0-based among the data rows
    present = np.flatnonzero(row >= 0)
    q = np.repeat(present, need)
    d = found[row[present]].ravel()
    s = np.tile(np.arange(need, 0, -1, dtype=np.float64), present.size)
    return {"t2a": Lists("t2a", q, d, s, np.repeat(row_line[present] + 1, need))}
