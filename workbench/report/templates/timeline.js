/* Operation timeline: one lane per worker, every operation drawn on a canvas.
   Data: the JSON element #timeline-data (encoding in workbench/report/timeline.py).
   Wheel zooms around the cursor, drag pans, double-click resets; hover names the operation.
   Everything taken from the history is shown with textContent, never parsed as HTML. */
(function () {
  "use strict";
  var dataEl = document.getElementById("timeline-data");
  var canvas = document.getElementById("timeline-canvas");
  var tip = document.getElementById("timeline-tip");
  if (!dataEl || !canvas || !tip) { return; }
  var D = JSON.parse(dataEl.textContent);
  var n = D.t.length;
  var TYPE_COLORS = { o: "#2f6fbf", f: "#d6336c", i: "#e8890c" };
  var TYPE_NAMES = { o: "ok", f: "fail", i: "info" };
  var GUTTER = 92, RIGHT = 8, AXIS = 30, PAD_BOTTOM = 6;

  // Decode the delta-encoded columns once.
  var start = new Float64Array(n), end = new Float64Array(n);
  var lane = new Int32Array(n), hist = new Float64Array(n), code = new Uint8Array(n);
  var tick = 0, hi = 0, k;
  var codes = { o: 0, f: 1, i: 2 }, codeChars = ["o", "f", "i"];
  for (k = 0; k < n; k++) {
    tick += D.s[k];
    start[k] = tick * D.unit;
    end[k] = D.d[k] < 0 ? -1 : (tick + D.d[k]) * D.unit;
    lane[k] = D.procLane[D.p[k]];
    hi += D.i[k];
    hist[k] = hi;
    code[k] = codes[D.t.charAt(k)] || 0;
  }
  var nLanes = D.lanes.length;
  var byLane = [];
  for (k = 0; k < nLanes; k++) { byLane.push([]); }
  for (k = 0; k < n; k++) { byLane[lane[k]].push(k); }
  var laneCounts = byLane.map(function (l) { return l.length; });
  var highlighted = new Uint8Array(n);
  for (k = 0; k < D.hl.length; k++) { highlighted[D.hl[k]] = 1; }

  var tEnd = Math.max(D.end, 1e-3);
  var laneH = Math.max(3, Math.min(18, Math.floor(480 / Math.max(1, nLanes))));
  var view = { t0: 0, t1: tEnd };
  var cssW = 0, cssH = AXIS + nLanes * laneH + PAD_BOTTOM;
  var ctx = canvas.getContext("2d");
  var pending = false;

  function plotW() { return cssW - GUTTER - RIGHT; }
  function xR() { return cssW - RIGHT; }
  function xOf(t) { return GUTTER + (t - view.t0) / (view.t1 - view.t0) * plotW(); }
  function tOf(x) { return view.t0 + (x - GUTTER) / plotW() * (view.t1 - view.t0); }

  function niceStep(span, target) {
    var raw = span / target, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 5, 10], s;
    for (s = 0; s < steps.length; s++) { if (raw <= steps[s] * mag) { return steps[s] * mag; } }
    return 10 * mag;
  }

  function resize() {
    var dpr = window.devicePixelRatio || 1;
    cssW = Math.max(320, canvas.parentNode.clientWidth);
    // Same margins as the plots above, so a time sits at the same x in every graph.
    GUTTER = Math.max(70, Math.round(D.margins[0] * cssW));
    RIGHT = Math.max(8, Math.round(D.margins[1] * cssW));
    canvas.style.width = cssW + "px";
    canvas.style.height = cssH + "px";
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    draw();
  }

  function draw() {
    pending = false;
    var top = AXIS, bottom = AXIS + nLanes * laneH, i, x1, x2, y, c, w;
    ctx.clearRect(0, 0, cssW, cssH);
    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    // Lane stripes and labels.
    for (i = 0; i < nLanes; i++) {
      if (i % 2 === 0) { ctx.fillStyle = "#f6f7f9"; ctx.fillRect(GUTTER, top + i * laneH, plotW(), laneH); }
      if (laneH >= 9 || i % Math.ceil(9 / laneH) === 0) {
        ctx.fillStyle = "#555";
        ctx.fillText(D.lanes[i], 4, top + i * laneH + laneH / 2, GUTTER - 8);
      }
    }
    // Per-lane operation counts in the right margin (kept free to line up with the plots).
    ctx.fillStyle = "#777";
    for (i = 0; i < nLanes; i++) {
      if (laneH >= 9 || i % Math.ceil(9 / laneH) === 0) {
        ctx.fillText(laneCounts[i].toLocaleString("en-US") + " ops", xR() + 8, top + i * laneH + laneH / 2, RIGHT - 12);
      }
    }
    ctx.save();
    ctx.beginPath();
    ctx.rect(GUTTER, 0, plotW() + 1, cssH);
    ctx.clip();
    // Fault windows as bands across all lanes, named in the axis strip.
    for (i = 0; i < D.faults.length; i++) {
      var f = D.faults[i];
      x1 = xOf(f[1]); x2 = xOf(f[2]);
      if (x2 < GUTTER || x1 > xR()) { continue; }
      ctx.globalAlpha = 0.18;
      ctx.fillStyle = D.colors[f[0]] || "#888";
      ctx.fillRect(x1, top, Math.max(1, x2 - x1), bottom - top);
      ctx.globalAlpha = 1;
      // A solid bar above the lanes: dense lanes can hide the band itself.
      ctx.fillRect(x1, AXIS - 5, Math.max(2, x2 - x1), 4);
      if (x2 - x1 > 40) {
        ctx.fillStyle = D.colors[f[0]] || "#888";
        ctx.fillText(f[0] + (f[3] ? " (never stopped)" : ""), Math.max(x1, GUTTER) + 3, AXIS - 11,
          Math.max(10, Math.min(x2, xR()) - Math.max(x1, GUTTER) - 6));
      }
    }
    // Operations, one pass per outcome so the fill style changes three times, not 100,000.
    var pxPerS = plotW() / (view.t1 - view.t0), right = xR();
    for (c = 0; c < 3; c++) {
      ctx.fillStyle = TYPE_COLORS[codeChars[c]];
      for (i = 0; i < n; i++) {
        if (code[i] !== c) { continue; }
        x1 = GUTTER + (start[i] - view.t0) * pxPerS;
        x2 = GUTTER + ((end[i] < 0 ? tEnd : end[i]) - view.t0) * pxPerS;
        if (x2 < GUTTER || x1 > right) { continue; }
        y = top + lane[i] * laneH + 1;
        w = x2 - x1;
        if (end[i] < 0) { ctx.globalAlpha = 0.35; }
        ctx.fillRect(x1, y, w < 1 ? 1 : w, laneH - 2 > 1 ? laneH - 2 : 1);
        if (end[i] < 0) { ctx.globalAlpha = 1; }
      }
    }
    // Operations named by anomalies get a dark outline so they can be found at any zoom.
    ctx.strokeStyle = "#111";
    ctx.lineWidth = 1.5;
    for (i = 0; i < D.hl.length; i++) {
      var h = D.hl[i];
      x1 = xOf(start[h]);
      x2 = xOf(end[h] < 0 ? tEnd : end[h]);
      if (x2 < GUTTER || x1 > xR()) { continue; }
      ctx.strokeRect(x1 - 1, top + lane[h] * laneH, Math.max(3, x2 - x1 + 2), laneH);
    }
    // Instantaneous faults as dashed lines.
    ctx.setLineDash([4, 3]);
    ctx.lineWidth = 1;
    for (i = 0; i < D.marks.length; i++) {
      var m = D.marks[i];
      x1 = xOf(m[2]);
      if (x1 < GUTTER || x1 > xR()) { continue; }
      ctx.strokeStyle = D.colors[m[0]] || "#555";
      ctx.beginPath(); ctx.moveTo(x1, AXIS - 4); ctx.lineTo(x1, bottom); ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.restore();
    // Time axis along the top.
    var step = niceStep(view.t1 - view.t0, Math.max(2, Math.floor(plotW() / 110)));
    ctx.fillStyle = "#333";
    ctx.strokeStyle = "#bbb";
    ctx.textBaseline = "alphabetic";
    var digits = step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step)));
    for (var t = Math.ceil(view.t0 / step) * step; t <= view.t1 + 1e-12; t += step) {
      x1 = xOf(t);
      ctx.beginPath(); ctx.moveTo(x1, AXIS - 3); ctx.lineTo(x1, AXIS); ctx.stroke();
      var txt = t.toFixed(digits) + " s", tw = ctx.measureText(txt).width;
      ctx.fillText(txt, Math.min(x1 + 2, cssW - tw - 2), 11);
    }
    ctx.fillStyle = "#555";
    ctx.fillText("time since start", 4, 11, GUTTER - 8);
    var label = document.getElementById("timeline-range");
    if (label) {
      label.textContent = view.t0.toFixed(3) + " s – " + view.t1.toFixed(3) + " s";
    }
  }

  function redraw() {
    if (!pending) { pending = true; window.requestAnimationFrame(draw); }
  }

  function setView(t0, t1) {
    var span = Math.max(1e-4, Math.min(tEnd, t1 - t0));
    t0 = Math.max(0, Math.min(t0, tEnd - span));
    view.t0 = t0;
    view.t1 = t0 + span;
    redraw();
  }

  function zoom(factor, aroundT) {
    var t = aroundT === undefined ? (view.t0 + view.t1) / 2 : aroundT;
    setView(t - (t - view.t0) * factor, t + (view.t1 - t) * factor);
  }

  function hit(x, y) {
    var l = Math.floor((y - AXIS) / laneH);
    if (l < 0 || l >= nLanes || x < GUTTER) { return -1; }
    var ops = byLane[l], t = tOf(x), tol = 3 * (view.t1 - view.t0) / plotW();
    // Ops in a lane are in start order: find the last one starting before the cursor.
    var lo = 0, hiI = ops.length - 1, best = -1;
    while (lo <= hiI) {
      var mid = (lo + hiI) >> 1;
      if (start[ops[mid]] <= t + tol) { best = mid; lo = mid + 1; } else { hiI = mid - 1; }
    }
    for (var j = best; j >= 0 && j > best - 4; j--) {
      var o = ops[j];
      if (end[o] < 0 || end[o] + tol >= t) { return o; }
    }
    return -1;
  }

  function describe(o) {
    var proc = D.procs[D.p[o]];
    var dur = end[o] < 0 ? "never completed" : ((end[o] - start[o]) * 1000).toFixed(1) + " ms";
    return "process " + proc + " · " + D.fs[D.f[o]] + " · " + TYPE_NAMES[codeChars[code[o]]] +
      (highlighted[o] ? " · in an anomaly" : "") + "\n" +
      start[o].toFixed(4) + " s → " + (end[o] < 0 ? "…" : end[o].toFixed(4) + " s") +
      " (" + dur + ")\nhistory.jsonl index " + hist[o];
  }

  var drag = null;
  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    var r = canvas.getBoundingClientRect();
    zoom(e.deltaY > 0 ? 1.25 : 0.8, tOf(e.clientX - r.left));
  }, { passive: false });
  canvas.addEventListener("mousedown", function (e) { drag = { x: e.clientX, t0: view.t0, t1: view.t1 }; });
  window.addEventListener("mouseup", function () { drag = null; });
  canvas.addEventListener("dblclick", function () { setView(0, tEnd); });
  canvas.addEventListener("mouseleave", function () { tip.hidden = true; });
  canvas.addEventListener("mousemove", function (e) {
    var r = canvas.getBoundingClientRect();
    if (drag) {
      var dt = (e.clientX - drag.x) / plotW() * (drag.t1 - drag.t0);
      setView(drag.t0 - dt, drag.t1 - dt);
      tip.hidden = true;
      return;
    }
    var o = hit(e.clientX - r.left, e.clientY - r.top);
    if (o < 0) { tip.hidden = true; return; }
    tip.textContent = describe(o);
    tip.hidden = false;
    tip.style.left = Math.min(e.clientX - r.left + 14, cssW - 300) + "px";
    tip.style.top = (e.clientY - r.top + 14) + "px";
  });
  function on(id, fn) { var b = document.getElementById(id); if (b) { b.addEventListener("click", fn); } }
  on("timeline-in", function () { zoom(0.5); });
  on("timeline-out", function () { zoom(2); });
  on("timeline-reset", function () { setView(0, tEnd); });
  // "Show on timeline" buttons next to anomalies carry a time range in data attributes.
  document.addEventListener("click", function (e) {
    var b = e.target && e.target.closest ? e.target.closest("[data-tl-from]") : null;
    if (!b) { return; }
    var from = parseFloat(b.getAttribute("data-tl-from")), to = parseFloat(b.getAttribute("data-tl-to"));
    var pad = Math.max(0.05, (to - from) * 0.5);
    setView(from - pad, to + pad);
    canvas.scrollIntoView({ behavior: "smooth", block: "center" });
  });
  window.addEventListener("resize", resize);
  resize();
  document.documentElement.setAttribute("data-timeline", "drawn:" + n);
})();
