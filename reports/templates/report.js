// The report's only script: inlined into the page, fetches nothing.
//
// 1. Sortable tables: click a heading of a table.sortable to sort by that
//    column (numbers as numbers), click again to reverse.
// 2. A rendering check: after layout, every chart's SVG is measured and the
//    count of charts the browser actually drew with a non-empty size is
//    written to <body data-charts-drawn="N" data-charts="M">. The
//    headless-browser test reads it from the rendered DOM.
(function () {
  function cellValue(row, i) {
    var cell = row.children[i];
    var text = cell ? cell.textContent.trim() : "";
    var n = parseFloat(text.replace(/[, %]/g, ""));
    return isNaN(n) || !/^[-+]?[\d.,]+( ?%| ms)?$/.test(text) ? text.toLowerCase() : n;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.tHead ? table.tHead.rows[table.tHead.rows.length - 1].cells : [];
    Array.prototype.forEach.call(heads, function (th) {
      th.addEventListener("click", function () {
        // The column's index in a body row (headings spanning two rows shift it).
        var index = Array.prototype.indexOf.call(th.parentNode.children, th);
        if (table.tHead.rows.length > 1 && th.parentNode === table.tHead.rows[1]) {
          var lead = 0;
          Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) {
            if (c.rowSpan > 1) lead += 1;
          });
          index += lead;
        }
        var asc = !th.classList.contains("sorted-asc");
        table.querySelectorAll("th").forEach(function (h) { h.classList.remove("sorted-asc", "sorted-desc"); });
        th.classList.add(asc ? "sorted-asc" : "sorted-desc");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a, index), y = cellValue(b, index);
          var c = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === "number" ? -1 : 1);
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  function measure() {
    var charts = document.querySelectorAll("figure.chart");
    var drawn = 0;
    charts.forEach(function (fig) {
      var svg = fig.querySelector("svg");
      if (!svg) return;
      var box = svg.getBoundingClientRect();
      var marks = svg.querySelectorAll("polyline, rect, circle, path, text").length;
      if (box.width > 0 && box.height > 0 && marks > 0) {
        drawn += 1;
        fig.setAttribute("data-drawn", "yes");
      }
    });
    document.body.setAttribute("data-charts", String(charts.length));
    document.body.setAttribute("data-charts-drawn", String(drawn));
  }
  if (document.readyState === "complete") measure();
  else window.addEventListener("load", measure);
})();
