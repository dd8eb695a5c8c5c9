"""The leaderboard site's stylesheet and script (:mod:`bench.leaderboard.site` writes them into the site).

Kept as strings so the site needs no package data, no CDN and no build step: the pages work when
opened from disk (``file://``) and when served by GitHub Pages. The script only sorts, filters and
switches views of rows the HTML already holds; without it the page still shows every number.
"""

from __future__ import annotations

CSS = """\
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem; color: #1b1f24; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 1.6rem; }
a { color: #0b5cad; }
table { border-collapse: collapse; font-size: 0.85rem; }
th, td { border-bottom: 1px solid #d8dee4; padding: 0.3rem 0.55rem; text-align: left; vertical-align: top; }
th { background: #f3f5f7; position: sticky; top: 0; }
th.sortable { cursor: pointer; user-select: none; white-space: nowrap; }
th.sortable::after { content: " \\2195"; color: #8a939c; }
th[aria-sort="ascending"]::after { content: " \\25B2"; color: #1b1f24; }
th[aria-sort="descending"]::after { content: " \\25BC"; color: #1b1f24; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.chance td { color: #6a737d; font-style: italic; }
tr.row:hover td { background: #f6f8fa; }
.ci { display: block; color: #6a737d; font-size: 0.75rem; }
.controls { display: flex; flex-wrap: wrap; gap: 0.8rem; align-items: center; margin: 0.8rem 0; font-size: 0.85rem; }
.controls label { display: inline-flex; gap: 0.3rem; align-items: center; }
.note { color: #57606a; font-size: 0.85rem; max-width: 60rem; }
.warning { color: #9a6700; }
pre { background: #f6f8fa; padding: 0.6rem; overflow-x: auto; font-size: 0.8rem; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2rem 1rem; font-size: 0.85rem; }
dt { font-weight: 600; } dd { margin: 0; }
svg text { font-size: 10px; fill: #57606a; }
figure { display: inline-block; margin: 0 1.5rem 0.5rem 0; } figcaption { font-size: 0.8rem; color: #57606a; }
"""

JS = """\
// Sorting, filtering and the seeds/runs switch of a leaderboard table. The rows are all in the
// HTML; this only reorders and hides them. data-v on a cell is its sort key (a number or text).
(function () {
  "use strict";
  function each(list, fn) { Array.prototype.forEach.call(list, fn); }
  each(document.querySelectorAll("table.board"), function (table) {
    var body = table.tBodies[0];
    var controls = document.getElementById(table.id + "-controls");
    var shown = document.getElementById(table.id + "-shown");
    function rows() { return Array.prototype.slice.call(body.querySelectorAll("tr.row")); }
    function state() {
      var out = { view: "agg", filters: {} };
      each(controls.querySelectorAll("input[name=view]"), function (r) { if (r.checked) { out.view = r.value; } });
      each(controls.querySelectorAll("select[data-filter]"), function (s) {
        if (s.value) { out.filters[s.getAttribute("data-filter")] = s.value; }
      });
      return out;
    }
    function apply() {
      var s = state(), count = 0;
      rows().forEach(function (tr) {
        var ok = tr.getAttribute("data-view") === s.view;
        Object.keys(s.filters).forEach(function (key) {
          if (tr.getAttribute("data-" + key) !== s.filters[key]) { ok = false; }
        });
        tr.hidden = !ok;
        if (ok) { count += 1; }
      });
      shown.textContent = count + (count === 1 ? " row" : " rows");
    }
    function sortBy(th) {
      var index = th.cellIndex;
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      each(table.tHead.rows[0].cells, function (c) { c.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var chance = body.querySelector("tr.chance");
      var sorted = rows().map(function (tr, i) { return [tr, i]; });
      sorted.sort(function (a, b) {
        var x = a[0].cells[index].getAttribute("data-v"), y = b[0].cells[index].getAttribute("data-v");
        var empty = (x === "") - (y === "");
        if (empty) { return empty; }  // rows without a value go last either way
        var nx = parseFloat(x), ny = parseFloat(y), c;
        c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : (x < y ? -1 : x > y ? 1 : 0);
        return (ascending ? c : -c) || a[1] - b[1];
      });
      sorted.forEach(function (p) { body.appendChild(p[0]); });
      if (chance) { body.appendChild(chance); }
    }
    each(table.tHead.rows[0].cells, function (th) {
      if (th.classList.contains("sortable")) {
        th.addEventListener("click", function () { sortBy(th); });
        th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sortBy(th); } });
      }
    });
    each(controls.querySelectorAll("input, select"), function (el) { el.addEventListener("change", apply); });
    apply();
  });
})();
"""
