// flopwise HTML report: draws each report section of the page from the JSON that Python wrote into it.
// Plain browser JavaScript, no library, nothing fetched. Exact integers in the tables; SI prefixes in the icicle.
(function () {
  "use strict";

  var PREFIXES = ["", "k", "M", "G", "T", "P", "E", "Z", "Y"];
  var ROW_PX = 30;

  function si(value) {
    var m = 0, v = value;
    while (Math.abs(v) >= 999.5 && m < PREFIXES.length - 1) { v /= 1000; m += 1; }
    if (m === 0) { return String(Math.round(v)); }
    return Number(v.toPrecision(3)) + " " + PREFIXES[m];
  }

  function exact(value) {  // 112896 → "112,896", whatever the browser's locale
    return String(value).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function percent(part, total) {
    return total ? (100 * part / total).toFixed(1) + "%" : "-";
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(c); } });
    return node;
  }

  function rowName(data, row) {  // what a person reads: "conv1", "SimpleConv (total)", "layer1 (self)"
    if (row.self) { return (row.name || data.model) + " (self)"; }
    return row.name || data.model + " (total)";
  }

  // — the header: what was counted, under which convention, and what is missing —
  function summary(data) {
    var t = data.total, mem = data.memory;
    var lines = [
      ["inputs", data.inputs || "(none)"],
      ["convention", data.convention.name + " — " + data.convention.description],
      ["total", exact(t.macs) + " MACs · " + exact(t.flops) + " FLOPs · " + exact(t.params) + " parameters (" +
        exact(t.trainable_params) + " trainable) · " + exact(t.bytes_read) + " bytes read · " +
        exact(t.bytes_written) + " bytes written"],
      ["memory", "weights " + exact(mem.weights) + " bytes" +
        (mem.peak_activations === null ? "" : " · activations at the peak " + exact(mem.peak_activations) +
          " bytes (estimated from tensor lifetimes)")]
    ];
    var list = el("dl", {"class": "summary"});
    lines.forEach(function (l) {
      list.appendChild(el("dt", {text: l[0]}));
      list.appendChild(el("dd", {text: l[1], "class": "summary-" + l[0]}));
    });
    return list;
  }

  function notices(data) {
    var box = el("div", {"class": "notices"});
    if (data.incomplete.length) {
      box.appendChild(el("pre", {"class": "incomplete", text: data.incomplete.join("\n")}));
    }
    data.warnings.forEach(function (w) { box.appendChild(el("p", {"class": "warning", text: "warning: " + w})); });
    return box;
  }

  // — the module tree as an icicle: one band per depth, widths proportional to FLOPs; click to zoom —
  function icicle(data) {
    var key = data.total.flops ? "flops" : data.total.macs ? "macs" : "bytes";
    var value = function (row) { return key === "bytes" ? row.bytes_read + row.bytes_written : row[key]; };
    var nodes = [], byName = {}, depth = 0;
    data.modules.forEach(function (row) {
      var parentName = row.self ? row.name : row.name.slice(0, Math.max(row.name.lastIndexOf("."), 0));
      var parent = row.name === "" && !row.self ? null : byName[parentName];
      var node = {row: row, parent: parent, children: [], v: value(row), x0: 0, x1: 1};
      if (parent) { parent.children.push(node); }
      if (!row.self) { byName[row.name] = node; }
      depth = Math.max(depth, row.depth);
      nodes.push(node);
    });
    nodes.forEach(function (node) {  // tree order: a parent is laid out before its children
      var x = node.x0, span = node.x1 - node.x0;
      node.children.forEach(function (c) {
        c.x0 = x;
        c.x1 = x + (node.v ? span * c.v / node.v : 0);
        x = c.x1;
      });
    });
    var box = el("div", {"class": "icicle", style: "height:" + (depth + 1) * ROW_PX + "px"});
    var crumbs = el("div", {"class": "crumbs"});
    var focus = nodes[0];
    nodes.forEach(function (node) {
      var row = node.row, kind = row.self ? "(self)" : row.type;
      var tip = rowName(data, row) + (row.describe ? " — " + row.describe : kind ? " — " + kind : "") +
        "\nMACs " + exact(row.macs) + "\nFLOPs " + exact(row.flops) + " (" + percent(row.flops, data.total.flops) +
        " of the total)\nparameters " + exact(row.params);
      var label = (row.self ? "(self)" : row.name ? row.name.split(".").pop() : data.model) + " · " + si(node.v);
      node.div = el("div", {"class": "node" + (row.self ? " self" : ""), title: tip,
        "data-name": rowName(data, row), "data-value": String(node.v),
        style: "top:" + row.depth * ROW_PX + "px;background:" + colour(kind)}, [el("span", {text: label})]);
      node.div.addEventListener("click", function () { zoom(node === focus && node.parent ? node.parent : node); });
      box.appendChild(node.div);
    });

    function zoom(target) {
      focus = target;
      var lo = target.x0, width = target.x1 - target.x0 || 1;
      nodes.forEach(function (node) {
        var ancestor = node.row.depth < target.row.depth && node.x0 <= lo && node.x1 >= target.x1;
        var inside = node.x0 >= lo - 1e-12 && node.x1 <= target.x1 + 1e-12 && node.row.depth >= target.row.depth;
        var left = ancestor ? 0 : (node.x0 - lo) / width, w = ancestor ? 1 : (node.x1 - node.x0) / width;
        var shown = (ancestor || inside) && w > 0;
        node.div.style.display = shown ? "" : "none";
        node.div.style.left = 100 * left + "%";
        node.div.style.width = 100 * w + "%";
        node.div.classList.toggle("focus", node === target);
        node.div.classList.toggle("narrow", w * box.clientWidth < 40);
      });
      crumbs.textContent = "";
      var path = [];
      for (var n = target; n; n = n.parent) { path.unshift(n); }
      path.forEach(function (n, i) {
        var a = el("button", {type: "button", text: i ? n.row.name.split(".").pop() : data.model});
        a.addEventListener("click", function () { zoom(n); });
        crumbs.appendChild(a);
      });
    }
    var wrap = el("div", {"class": "tree"}, [
      el("p", {"class": "hint", text: "Module tree by " + (key === "bytes" ? "bytes moved" : key.toUpperCase()) +
        " — click a block to zoom in, the zoomed block or the path above to zoom out."}), crumbs, box]);
    setTimeout(function () { zoom(focus); }, 0);  // after layout, so that widths in pixels are known
    zoom(focus);
    return wrap;
  }

  function colour(kind) {
    if (kind === "(self)") { return "#c9c9c9"; }
    var h = 0;
    for (var i = 0; i < kind.length; i++) { h = (h * 31 + kind.charCodeAt(i)) % 360; }
    return "hsl(" + h + ",55%,72%)";
  }

  // — a sortable, filterable table: click a header to sort (again to reverse), type to filter —
  function table(spec) {
    var sortKey = null, descending = false;
    var input = el("input", {type: "search", placeholder: spec.placeholder, "aria-label": spec.placeholder});
    var count = el("span", {"class": "count"});
    var head = el("tr");
    var body = el("tbody");
    spec.columns.forEach(function (col) {
      var th = el("th", {"class": col.num ? "num" : "", "data-key": col.key, text: col.header, tabindex: "0"});
      th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { th.click(); } });
      th.addEventListener("click", function () {
        descending = sortKey === col.key ? !descending : !!col.num;  // numbers: largest first
        sortKey = col.key;
        draw();
      });
      head.appendChild(th);
    });

    function draw() {
      var needle = input.value.trim().toLowerCase();
      var rows = spec.rows.filter(function (r) { return !needle || spec.text(r).toLowerCase().indexOf(needle) >= 0; });
      if (sortKey !== null) {
        var col = spec.columns.filter(function (c) { return c.key === sortKey; })[0];
        rows = rows.slice().sort(function (a, b) {
          var x = col.value(a), y = col.value(b);
          var order = col.num ? x - y : String(x).localeCompare(String(y));
          return descending ? -order : order;
        });
      }
      Array.prototype.forEach.call(head.children, function (th) {
        var on = th.getAttribute("data-key") === sortKey;
        th.setAttribute("aria-sort", on ? (descending ? "descending" : "ascending") : "none");
      });
      body.textContent = "";
      rows.forEach(function (r) {
        var tr = el("tr", {"data-name": spec.name(r), "class": spec.rowClass(r)});
        spec.columns.forEach(function (col) {
          var td = el("td", {"class": col.num ? "num" : ""});
          var link = col.href ? col.href(r) : null;  // a cell that links to another part of the page
          if (link) { td.appendChild(el("a", {href: link, text: col.show(r)})); } else { td.textContent = col.show(r); }
          if (col.num) { td.setAttribute("data-value", String(col.value(r))); }
          if (col.indent && sortKey === null && !needle) { td.style.paddingLeft = 0.4 + r.depth * 1.1 + "em"; }
          tr.appendChild(td);
        });
        body.appendChild(tr);
      });
      count.textContent = rows.length + " of " + spec.rows.length + " rows" +
        (sortKey === null ? " in " + spec.reset : ", sorted by " + sortKey + (descending ? " (largest first)" : ""));
    }
    input.addEventListener("input", draw);
    var reset = el("button", {type: "button", text: spec.reset});
    reset.addEventListener("click", function () { sortKey = null; input.value = ""; draw(); });
    draw();
    return el("div", {"class": "table " + spec.cls}, [el("h3", {text: spec.title}),
      el("div", {"class": "controls"}, [input, reset, count]), el("table", {}, [el("thead", {}, [head]), body])]);
  }

  function numberColumn(key, header, value) {
    var get = value || function (r) { return r[key]; };
    return {key: key, header: header, num: true, value: get, show: function (r) { return exact(get(r)); }};
  }

  function modulesTable(data) {
    var flops = data.total.flops;
    return table({
      cls: "modules", title: "Modules", reset: "tree order", placeholder: "filter modules by name or type", rows: data.modules,
      name: function (r) { return rowName(data, r); },
      text: function (r) { return rowName(data, r) + " " + r.type; },
      rowClass: function (r) { return r.self ? "self" : r.name ? "" : "root"; },
      columns: [
        {key: "module", header: "Module", indent: true, value: function (r) { return rowName(data, r); },
          show: function (r) { return rowName(data, r); }},
        {key: "type", header: "Type", value: function (r) { return r.type; }, show: function (r) { return r.type; }},
        numberColumn("params", "Params"), numberColumn("macs", "MACs"), numberColumn("flops", "FLOPs"),
        {key: "share", header: "% FLOPs", num: true, value: function (r) { return flops ? r.flops / flops : 0; },
          show: function (r) { return percent(r.flops, flops); }},
        numberColumn("bytes_read", "Bytes read"), numberColumn("bytes_written", "Bytes written")
      ]
    });
  }

  function operatorsTable(data) {
    var flops = data.total.flops;
    return table({
      cls: "operators", title: "Operators (aten)", reset: "FLOPs order", placeholder: "filter operators", rows: data.operators,
      name: function (r) { return r.op; }, text: function (r) { return r.op; },
      rowClass: function (r) { return r.unknown ? "unknown" : ""; },
      columns: [
        {key: "op", header: "Operator", value: function (r) { return r.op; },
          show: function (r) { return r.op + (r.unknown ? " — no known cost" : ""); }},
        numberColumn("calls", "Calls"), numberColumn("macs", "MACs"), numberColumn("flops", "FLOPs"),
        {key: "share", header: "% FLOPs", num: true, value: function (r) { return flops ? r.flops / flops : 0; },
          show: function (r) { return percent(r.flops, flops); }},
        numberColumn("bytes_read", "Bytes read"), numberColumn("bytes_written", "Bytes written")
      ]
    });
  }

  // — the hand calculation, one collapsible block per module (its own ops and its submodules') —
  function explanations(data) {
    var box = el("div", {"class": "explain"}, [el("h3", {text: "Hand calculation"})]);
    var names = Object.keys(data.explain);
    data.modules.forEach(function (row) {
      if (row.self || !row.name) { return; }
      var text = names.filter(function (n) { return n === row.name || n.indexOf(row.name + ".") === 0; })
        .map(function (n) { return data.explain[n]; }).join("\n");
      if (!text) { return; }
      var title = row.name + " (" + (row.describe || row.type) + "): " + exact(row.macs) + " MACs, " +
        exact(row.flops) + " FLOPs";
      box.appendChild(el("details", {"data-name": row.name, style: "margin-left:" + (row.depth - 1) * 1.2 + "em"},
        [el("summary", {text: title}), el("pre", {text: text})]));
    });
    if (data.explain[""]) {
      box.appendChild(el("details", {"data-name": data.model + " (self)"}, [
        el("summary", {text: data.model + " (self): the ops its forward runs outside its submodules"}),
        el("pre", {text: data.explain[""]})]));
    }
    box.appendChild(el("details", {"class": "whole", "data-name": ""},
      [el("summary", {text: "The whole model: every op, the sums, and the notes"}),
        el("pre", {text: data.explanation})]));
    return box;
  }

  // — `flopwise compare --format html`: the models side by side, ratios to the baseline, each linked to its report —
  function ratio(value) { return Number(value.toPrecision(3)) + "×"; }

  function comparisonTable(data) {
    function metric(key, header, show) {
      var known = function (r) { return r[key] !== undefined && r[key] !== null; };
      return {key: key, header: header, num: true, value: function (r) { return known(r) ? r[key] : -Infinity; },
        show: function (r) { return known(r) ? show(r[key]) : (r.error ? "" : "–"); }};
    }
    function note(r) { return r.error ? "FAILED: " + r.error : r.complete === false ? "lower bound" : ""; }
    return table({
      cls: "compared", title: "Models compared", reset: "command-line order", placeholder: "filter models",
      rows: data.models, name: function (r) { return r.spec; },
      text: function (r) { return r.spec + " " + (r.model || "") + " " + note(r); },
      rowClass: function (r) { return r.error ? "unknown" : r.spec === data.baseline ? "root" : ""; },
      columns: [
        {key: "model", header: "Model", value: function (r) { return r.spec; }, show: function (r) { return r.spec; },
          href: function (r) { return r.section === null ? null : "#report-" + r.section; }},
        metric("params", "Params", exact), metric("macs", "MACs", exact), metric("flops", "FLOPs", exact),
        metric("bytes", "Bytes moved", exact), metric("intensity", "FLOP/B", function (v) { return v.toFixed(1); }),
        metric("params_ratio", "Params ×", ratio), metric("macs_ratio", "MACs ×", ratio),
        metric("flops_ratio", "FLOPs ×", ratio),
        {key: "note", header: "Note", value: note, show: note}
      ]
    });
  }

  document.querySelectorAll("section.comparison").forEach(function (section) {
    var data = JSON.parse(section.querySelector("script.flopwise-comparison").textContent);
    section.appendChild(el("h2", {text: data.models.length + " models compared"}));
    section.appendChild(comparisonTable(data));
    section.appendChild(el("p", {"class": "hint", text: (data.baseline ? "Ratios are relative to " + data.baseline +
      " (the first model that counted)" : "No model counted, so there are no ratios") + "; convention " +
      (data.convention || "-") + ". Click a header to sort, a model to see its report below."}));
  });

  document.querySelectorAll("section.report").forEach(function (section) {
    var data = JSON.parse(section.querySelector("script.flopwise-data").textContent);
    var parts = [el("h2", {text: section.getAttribute("data-title") || data.model}), summary(data), notices(data),
      icicle(data), modulesTable(data), operatorsTable(data), explanations(data)];
    var after = section.querySelector(".measurement");
    parts.forEach(function (p) { section.insertBefore(p, after); });
  });
  document.documentElement.setAttribute("data-ready", "true");
})();
