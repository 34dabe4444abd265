/*
 * The inline script and style of the HTML reports. The script reads the chart specifications
 * (report-data.ts) from <script type="application/json" id="shoal-charts"> and draws them with
 * uPlot, which is inlined before it. Plain ES5-ish browser JavaScript in a string: it is never
 * run by Node, only by the browser viewing the report (and by the test, against a stub).
 *
 * Fault windows are shaded in a uPlot `drawClear` hook (under the grid and lines) and labelled
 * in a `draw` hook (on top), on the chart's own canvas.
 */

export const CLIENT_JS = String.raw`(function () {
  'use strict';

  function readJson(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent || 'null') : null;
  }

  function trim(v, digits) { return String(Number(v.toFixed(digits))); }
  function sig(v) {
    var a = Math.abs(v);
    return trim(v, a >= 100 ? 0 : a >= 10 ? 1 : 2);
  }
  var SI = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  function si(v, sep, unit) {
    var a = Math.abs(v);
    for (var i = 0; i < SI.length; i++) {
      if (a >= SI[i][0]) return sig(v / SI[i][0]) + sep + SI[i][1] + unit;
    }
    return sig(v) + (unit ? sep + unit : '');
  }
  var FORMATS = {
    count: function (v) { return si(v, '', ''); },
    bytes: function (v) { return si(v, ' ', 'B'); },
    ms: function (v) {
      var a = Math.abs(v);
      if (a < 1000) return sig(v) + ' ms';
      if (a < 60000) return sig(v / 1000) + ' s';
      return sig(v / 60000) + ' min';
    },
    seconds: function (v) { return trim(v, 3) + ' s'; }
  };
  function formatOf(name) { return FORMATS[name] || FORMATS.count; }
  function legendValue(fmt) {
    return function (u, v) { return v == null || !isFinite(v) ? '\u2014' : fmt(v); };
  }
  function axisValues(fmt) {
    return function (u, splits) {
      return splits.map(function (v) { return v == null ? '' : fmt(v); });
    };
  }
  // Tick steps for whole-number axes: 1, 2, 5, 10, 20, 50, ...
  var INTEGER_INCRS = [];
  for (var e = 1; e <= 1e12; e *= 10) INTEGER_INCRS.push(e, 2 * e, 5 * e);

  function pxRatio() {
    return (typeof uPlot !== 'undefined' && uPlot.pxRatio) || window.devicePixelRatio || 1;
  }

  // Translucent bands over the fault windows, labelled at the top; dashed markers (healed, converged).
  function shadePlugin(spec) {
    function drawShades(u) {
      if (!spec.shades.length) return;
      var ctx = u.ctx, b = u.bbox, pr = pxRatio();
      ctx.save();
      ctx.beginPath();
      ctx.rect(b.left, b.top, b.width, b.height);
      ctx.clip();
      spec.shades.forEach(function (s) {
        var x0 = u.valToPos(s.from, 'x', true), x1 = u.valToPos(s.to, 'x', true);
        if (!isFinite(x0) || !isFinite(x1)) return;
        ctx.fillStyle = s.fill;
        ctx.fillRect(x0, b.top, Math.max(pr, x1 - x0), b.height);
        ctx.strokeStyle = s.stroke;
        ctx.lineWidth = pr;
        ctx.beginPath();
        ctx.moveTo(x0, b.top); ctx.lineTo(x0, b.top + b.height);
        ctx.moveTo(x1, b.top); ctx.lineTo(x1, b.top + b.height);
        ctx.stroke();
      });
      ctx.restore();
    }
    function drawLabels(u) {
      var ctx = u.ctx, b = u.bbox, pr = pxRatio();
      var right = b.left + b.width, bottom = b.top + b.height;
      ctx.save();
      ctx.beginPath();
      ctx.rect(b.left, b.top, b.width, b.height);
      ctx.clip();
      ctx.font = Math.round(11 * pr) + 'px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
      ctx.textBaseline = 'middle';
      ctx.textAlign = 'left';
      var rowH = 16 * pr, pad = 4 * pr, rows = [];
      spec.shades.map(function (s) {
        return { s: s, x0: u.valToPos(s.from, 'x', true), x1: u.valToPos(s.to, 'x', true) };
      }).filter(function (o) {
        return isFinite(o.x0) && isFinite(o.x1) && o.x1 >= b.left && o.x0 <= right;
      }).sort(function (a, c) { return a.x0 - c.x0; }).forEach(function (o) {
        var x = Math.max(o.x0, b.left) + pad;
        var w = ctx.measureText(o.s.label).width + 2 * pad;
        var row = 0;
        while (row < rows.length && rows[row] > x) row++;
        if (row >= 6) {
          row = 0;
          for (var r = 1; r < rows.length; r++) if (rows[r] < rows[row]) row = r;
        }
        rows[row] = x + w + pad;
        var y = b.top + pad + row * rowH;
        ctx.fillStyle = 'rgba(255, 255, 255, 0.85)';
        ctx.fillRect(x, y, w, rowH - 2 * pr);
        ctx.fillStyle = o.s.stroke;
        ctx.fillRect(x, y, 3 * pr, rowH - 2 * pr);
        ctx.fillStyle = '#1a202c';
        ctx.fillText(o.s.label, x + pad + 2 * pr, y + (rowH - 2 * pr) / 2);
      });
      spec.markers.forEach(function (m, i) {
        var x = u.valToPos(m.x, 'x', true);
        if (!isFinite(x) || x < b.left || x > right) return;
        ctx.strokeStyle = m.stroke;
        ctx.lineWidth = 1.5 * pr;
        ctx.setLineDash([5 * pr, 4 * pr]);
        ctx.beginPath();
        ctx.moveTo(x, b.top); ctx.lineTo(x, bottom);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = m.stroke;
        ctx.textBaseline = 'bottom';
        // Stacked upwards so markers close together (healed, converged) do not overwrite each other.
        ctx.fillText(m.label, x + 3 * pr, bottom - 3 * pr - i * 14 * pr);
        ctx.textBaseline = 'middle';
      });
      ctx.restore();
    }
    return { hooks: { drawClear: [drawShades], draw: [drawLabels] } };
  }

  // y from zero; with fault labels along the top, some headroom so they cover less of the lines.
  function zeroBased(headroom) {
    return function (u, min, max) {
      var hi = max != null && isFinite(max) && max > 0 ? max : 1;
      return [0, uPlot.rangeNum(0, hi * headroom, 0.1, true)[1]];
    };
  }

  function widthOf(el) { return Math.max(320, Math.floor(el.clientWidth || 800)); }

  function renderChart(spec) {
    var el = document.getElementById(spec.id);
    if (!el) return null;
    var xFmt = formatOf(spec.xFormat);
    var series = [{ label: spec.xLabel, value: legendValue(xFmt) }];
    spec.series.forEach(function (s) {
      var opt = {
        label: s.label,
        stroke: s.stroke,
        width: s.width || 1.5,
        scale: s.scale,
        spanGaps: !!s.spanGaps,
        value: legendValue(formatOf(s.format))
      };
      if (s.dash) opt.dash = s.dash;
      if (s.points) opt.points = { show: true, size: 6 };
      series.push(opt);
    });
    var scales = { x: { time: false } };
    if (spec.logX) {
      scales.x.distr = 3;
      scales.x.log = 10;
      // Just past the data, not out to whole decades.
      scales.x.range = function (u, min, max) { return [min / 1.25, max * 1.25]; };
    }
    var axes = [{ label: spec.xLabel, values: axisValues(xFmt) }];
    if (spec.logX) {
      // Ticks at the sampled peer counts (3, 10, 30, 100...), not only at powers of ten.
      axes[0].splits = function (u, i, min, max) {
        return spec.x.filter(function (v) { return v >= min && v <= max; });
      };
      axes[0].filter = function (u, splits) { return splits; };
    } else if (spec.xInteger) {
      axes[0].incrs = INTEGER_INCRS;
    }
    spec.axes.forEach(function (a) {
      scales[a.scale] = { range: zeroBased(spec.shades.length > 0 ? 1.15 : 1) };
      var axis = {
        scale: a.scale,
        label: a.label,
        side: a.side === 'right' ? 1 : 3,
        size: 64,
        grid: { show: a.side !== 'right' },
        values: axisValues(formatOf(a.format))
      };
      if (a.integer) axis.incrs = INTEGER_INCRS;
      axes.push(axis);
    });
    var opts = {
      title: spec.title,
      width: widthOf(el),
      height: spec.height,
      series: series,
      scales: scales,
      axes: axes,
      bands: spec.bands.map(function (b) { return { series: [b.upper + 1, b.lower + 1], fill: b.fill }; }),
      plugins: [shadePlugin(spec)],
      legend: { live: true },
      cursor: spec.syncKey ? { sync: { key: spec.syncKey } } : {}
    };
    var data = [spec.x].concat(spec.series.map(function (s) { return s.data; }));
    return { el: el, spec: spec, plot: new uPlot(opts, data, el) };
  }

  function showError(id, err) {
    var el = document.getElementById(id);
    if (el) {
      el.className += ' chart-error';
      el.textContent = 'This chart could not be drawn: ' + (err && err.message ? err.message : String(err));
    }
    if (window.console) console.error(err);
  }

  var charts = [];
  (readJson('shoal-charts') || []).forEach(function (spec) {
    try {
      if (typeof uPlot === 'undefined') throw new Error('the plotting library did not load');
      var c = renderChart(spec);
      if (c) charts.push(c);
    } catch (err) {
      showError(spec.id, err);
    }
  });

  var resizeTimer = null;
  window.addEventListener('resize', function () {
    if (resizeTimer) clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      charts.forEach(function (c) { c.plot.setSize({ width: widthOf(c.el), height: c.spec.height }); });
    }, 100);
  });

  // Copy buttons: <button data-copy="ID"> copies the text of element ID.
  Array.prototype.forEach.call(document.querySelectorAll('button[data-copy]'), function (btn) {
    btn.addEventListener('click', function () {
      var target = document.getElementById(btn.getAttribute('data-copy'));
      if (!target) return;
      var text = target.textContent || '';
      function done(ok) {
        btn.textContent = ok ? 'Copied' : 'Press Ctrl+C';
        setTimeout(function () { btn.textContent = 'Copy'; }, 1500);
      }
      function fallback() {
        var range = document.createRange();
        range.selectNodeContents(target);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        var ok = false;
        try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
        done(ok);
      }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(function () { done(true); }, fallback);
      } else {
        fallback();
      }
    });
  });

  // The summary this page was drawn from, for the browser console.
  window.shoalData = readJson('shoal-data');
})();
`

export const PAGE_CSS = `
:root { color-scheme: light; --fg: #1a202c; --muted: #4a5568; --line: #e2e8f0; --ok: #2f855a; --bad: #c53030; }
body { margin: 0; background: #fff; color: var(--fg); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 20px 24px 40px; }
h1 { font-size: 22px; margin: 0 0 4px; word-break: break-word; }
h2 { font-size: 17px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
.sub { color: var(--muted); margin: 0 0 8px; }
.badge { display: inline-block; padding: 1px 10px; border-radius: 999px; color: #fff; font-size: 13px; font-weight: 600; vertical-align: 3px; }
.badge.ok { background: var(--ok); }
.badge.failed { background: var(--bad); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 3px 18px; margin: 8px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; font-variant-numeric: tabular-nums; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 12.5px; }
.violations { margin: 8px 0; padding: 8px 12px 8px 36px; max-height: 320px; overflow: auto; background: #fff5f5; border: 1px solid #feb2b2; border-radius: 6px; }
.violations li { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 12.5px; white-space: pre-wrap; word-break: break-word; }
.replay { display: flex; gap: 8px; align-items: flex-start; margin: 6px 0; }
.replay pre { flex: 1; margin: 0; padding: 8px 10px; background: #f7fafc; border: 1px solid var(--line); border-radius: 6px; white-space: pre-wrap; word-break: break-all; user-select: all; }
button { font: inherit; padding: 6px 12px; border: 1px solid #cbd5e0; border-radius: 6px; background: #edf2f7; color: var(--fg); cursor: pointer; }
button:hover { background: #e2e8f0; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 8px 0; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: right; vertical-align: top; }
th { background: #f7fafc; font-weight: 600; }
th.text, td.text { text-align: left; }
td code { word-break: break-all; }
tr.failed td { background: #fff5f5; }
.swatch { display: inline-block; width: 14px; height: 14px; margin-right: 6px; border: 1px solid rgba(0, 0, 0, 0.2); border-radius: 3px; vertical-align: -2px; }
.chart { margin: 8px 0 4px; min-height: 60px; }
.chart-error { padding: 12px; color: var(--bad); background: #fff5f5; border-radius: 6px; }
.note { margin: 4px 0; color: var(--muted); font-size: 13px; }
.empty { color: var(--muted); font-style: italic; }
details summary { cursor: pointer; margin: 8px 0; }
.uplot .u-title { font-size: 15px; font-weight: 600; text-align: left; }
.uplot .u-legend { font-size: 13px; text-align: left; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
`
