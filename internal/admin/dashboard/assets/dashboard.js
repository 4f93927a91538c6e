// linnet admin dashboard: polls the metrics tree (admin/metrics.json?tree=1)
// and renders per-router request rate, success rate and latency over time,
// plus client and service tables. No dependencies; charts are drawn on
// canvas.
(function () {
  "use strict";

  var params = new URLSearchParams(location.search);
  var onlyRouter = params.get("router");
  var interval = Math.max(250, Number(params.get("interval")) || 2000);
  var HISTORY = 90; // samples kept per router (3 minutes at 2 s)

  var history = {}; // router -> [{t, requests, success, failures, p50, p95, p99}]
  var prevClients = {}; // router -> {id -> {t, requests, success, failures}}
  var prevServices = {};

  function num(node, name, key) {
    var n = node && node[name];
    var v = n && n[key || "counter"];
    return typeof v === "number" ? v : 0;
  }
  function has(node, name) { return node && typeof node[name] === "object"; }
  function stat(node, name, q) {
    var n = node && node[name];
    var v = n && n["stat." + q];
    return typeof v === "number" ? v : null;
  }

  // Sum of request metrics over a scope's children (e.g. all servers).
  function sumScopes(scopes) {
    var s = { requests: 0, success: 0, failures: 0, pending: 0, p50: null, p95: null, p99: null, weight: -1 };
    Object.keys(scopes || {}).forEach(function (id) {
      var n = scopes[id];
      s.requests += num(n, "requests");
      s.success += num(n, "success");
      s.failures += num(n, "failures");
      s.pending += num(n, "pending", "gauge");
      // Latency: from the busiest scope in the last interval.
      var c = stat(n, "request_latency_ms", "count");
      if (c !== null && c > s.weight) {
        s.weight = c;
        s.p50 = stat(n, "request_latency_ms", "p50");
        s.p95 = stat(n, "request_latency_ms", "p95");
        s.p99 = stat(n, "request_latency_ms", "p99");
      }
    });
    return s;
  }

  function rate(cur, prev, key) {
    if (!prev) return null;
    var dt = (cur.t - prev.t) / 1000;
    if (dt <= 0) return null;
    return Math.max(0, (cur[key] - prev[key]) / dt);
  }
  function successRate(cur, prev) {
    var ds, df;
    if (prev) {
      ds = cur.success - prev.success;
      df = cur.failures - prev.failures;
      if (ds + df > 0) return ds / (ds + df);
    }
    if (cur.success + cur.failures > 0) return cur.success / (cur.success + cur.failures);
    return null;
  }

  function fmtRate(v) {
    if (v === null || v === undefined) return "–";
    return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  }
  function fmtPct(v) { return v === null || v === undefined ? "–" : (v * 100).toFixed(v === 1 ? 0 : 2) + "%"; }
  function fmtMs(v) { return v === null || v === undefined ? "–" : v + " ms"; }
  function srClass(v) { return v === null ? "" : v >= 0.99 ? "good" : v >= 0.95 ? "meh" : "bad"; }

  function setText(root, sel, text, cls) {
    var el = root.querySelector(sel);
    if (!el) return;
    el.textContent = text;
    if (cls !== undefined) el.className = el.className.replace(/\s*(good|meh|bad)\b/g, "") + (cls ? " " + cls : "");
  }

  // drawChart draws series (arrays of numbers or nulls, oldest first) as lines.
  function drawChart(canvas, series, opts) {
    var dpr = window.devicePixelRatio || 1;
    var w = canvas.clientWidth || 300, h = canvas.clientHeight || 120;
    if (canvas.width !== w * dpr || canvas.height !== h * dpr) {
      canvas.width = w * dpr;
      canvas.height = h * dpr;
    }
    var g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    var padL = 40, padR = 6, padT = 6, padB = 14;
    var max = opts.max;
    if (max === undefined) {
      max = 0;
      series.forEach(function (s) { s.values.forEach(function (v) { if (v !== null && v > max) max = v; }); });
      max = max <= 0 ? 1 : niceCeil(max * 1.1);
    }
    var min = opts.min || 0;
    var pw = w - padL - padR, ph = h - padT - padB;
    g.font = "10px system-ui, sans-serif";
    g.fillStyle = "#6b7886";
    g.strokeStyle = "#e1e6eb";
    g.lineWidth = 1;
    for (var i = 0; i <= 2; i++) {
      var v = min + (max - min) * i / 2;
      var y = padT + ph - ph * i / 2;
      g.beginPath(); g.moveTo(padL, y + .5); g.lineTo(w - padR, y + .5); g.stroke();
      g.fillText(opts.fmt ? opts.fmt(v) : String(+v.toFixed(2)), 2, y + 3);
    }
    g.fillText("-" + Math.round(HISTORY * interval / 1000) + "s", padL, h - 2);
    g.fillText("now", w - padR - 18, h - 2);
    series.forEach(function (s) {
      g.strokeStyle = s.color;
      g.lineWidth = 1.8;
      g.beginPath();
      var started = false;
      s.values.forEach(function (v, idx) {
        if (v === null) { started = false; return; }
        var x = padL + pw * (idx + HISTORY - s.values.length) / (HISTORY - 1);
        var y = padT + ph - ph * (Math.min(max, Math.max(min, v)) - min) / (max - min);
        if (!started) { g.moveTo(x, y); started = true; } else { g.lineTo(x, y); }
      });
      g.stroke();
    });
  }
  function niceCeil(v) {
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  function routerSection(label) {
    var id = "router-" + label;
    var el = document.getElementById(id);
    if (el) return el;
    var tpl = document.getElementById("router-template");
    el = tpl.content.firstElementChild.cloneNode(true);
    el.id = id;
    el.setAttribute("data-router", label);
    el.querySelector(".router-name").textContent = label;
    el.querySelector(".router-delegator").href = "delegator?router=" + encodeURIComponent(label);
    document.getElementById("routers").appendChild(el);
    return el;
  }

  function fillTable(tbody, rows) {
    var html = document.createDocumentFragment();
    rows.forEach(function (cells) {
      var tr = document.createElement("tr");
      cells.forEach(function (c, i) {
        var td = document.createElement("td");
        if (i === 0) td.className = "name";
        if (c && typeof c === "object") { td.textContent = c.text; if (c.cls) td.className += " " + c.cls; }
        else td.textContent = c;
        tr.appendChild(td);
      });
      html.appendChild(tr);
    });
    if (!rows.length) {
      var tr = document.createElement("tr");
      tr.innerHTML = '<td class="empty" colspan="7">none yet</td>';
      html.appendChild(tr);
    }
    tbody.replaceChildren(html);
  }

  function scopeRows(scopes, prevMap, now, extra) {
    var rows = [];
    var next = {};
    Object.keys(scopes || {}).sort().forEach(function (id) {
      var n = scopes[id];
      var cur = { t: now, requests: num(n, "requests"), success: num(n, "success"), failures: num(n, "failures") };
      var prev = prevMap[id];
      next[id] = cur;
      var sr = successRate(cur, prev);
      var row = [id, fmtRate(rate(cur, prev, "requests")), { text: fmtPct(sr), cls: srClass(sr) },
        stat(n, "request_latency_ms", "p99") === null ? "–" : String(stat(n, "request_latency_ms", "p99"))];
      rows.push(row.concat(extra(n), [String(cur.requests)]));
    });
    return { rows: rows, next: next };
  }

  function render(tree, now) {
    var rts = (tree && tree.rt) || {};
    var labels = Object.keys(rts).sort().filter(function (l) { return !onlyRouter || l === onlyRouter; });
    var total = { rps: 0, anyRate: false, requests: 0, success: 0, failures: 0, dsucc: 0, dfail: 0, pending: 0 };
    labels.forEach(function (label) {
      var rt = rts[label];
      var srv = sumScopes(rt.server);
      var cur = { t: now, requests: srv.requests, success: srv.success, failures: srv.failures, p50: srv.p50, p95: srv.p95, p99: srv.p99 };
      var h = history[label] || (history[label] = []);
      var prev = h.length ? h[h.length - 1] : null;
      cur.rps = rate(cur, prev, "requests");
      cur.sr = successRate(cur, prev);
      h.push(cur);
      if (h.length > HISTORY) h.shift();

      var el = routerSection(label);
      setText(el, ".rps", fmtRate(cur.rps));
      setText(el, ".success-rate", fmtPct(cur.sr), srClass(cur.sr));
      setText(el, ".p50", fmtMs(cur.p50));
      setText(el, ".p95", fmtMs(cur.p95));
      setText(el, ".p99", fmtMs(cur.p99));
      setText(el, ".pending", String(srv.pending));
      var eps = 0, avail = 0, anyLB = false;
      Object.keys(rt.client || {}).forEach(function (id) {
        var lb = rt.client[id].loadbalancer;
        if (lb) { anyLB = true; eps += num(lb, "size", "gauge"); avail += num(lb, "available", "gauge"); }
      });
      setText(el, ".endpoints", anyLB ? avail + " / " + eps : "–");

      drawChart(el.querySelector(".chart-rps"), [{ values: h.map(function (s) { return s.rps === undefined ? null : s.rps; }), color: "#2f80ed" }], { fmt: function (v) { return String(+v.toFixed(v >= 10 ? 0 : 2)); } });
      drawChart(el.querySelector(".chart-sr"), [{ values: h.map(function (s) { return s.sr; }), color: "#27ae60" }],
        { min: Math.min(0.9, Math.min.apply(null, h.map(function (s) { return s.sr === null ? 1 : s.sr; }))), max: 1, fmt: function (v) { return (v * 100).toFixed(0) + "%"; } });
      drawChart(el.querySelector(".chart-lat"), [
        { values: h.map(function (s) { return s.p50; }), color: "#2f80ed" },
        { values: h.map(function (s) { return s.p95; }), color: "#f2994a" },
        { values: h.map(function (s) { return s.p99; }), color: "#eb5757" }], { fmt: function (v) { return v.toFixed(0); } });

      var clients = scopeRows(rt.client, prevClients[label] || {}, now, function (n) {
        var lb = n.loadbalancer;
        return [lb ? num(lb, "available", "gauge") + " / " + num(lb, "size", "gauge") : "–",
          has(n, "connections") ? String(num(n, "connections", "gauge")) : "–"];
      });
      prevClients[label] = clients.next;
      fillTable(el.querySelector(".clients tbody"), clients.rows);
      var services = scopeRows(rt.service, prevServices[label] || {}, now, function (n) {
        return [n.retries ? String(num(n.retries, "total")) : "0"];
      });
      prevServices[label] = services.next;
      fillTable(el.querySelector(".services tbody"), services.rows);

      if (cur.rps !== null) { total.rps += cur.rps; total.anyRate = true; }
      total.requests += cur.requests;
      total.pending += srv.pending;
      if (prev) { total.dsucc += cur.success - prev.success; total.dfail += cur.failures - prev.failures; }
      total.success += cur.success;
      total.failures += cur.failures;
    });
    // Drop sections of routers that disappeared.
    Array.prototype.forEach.call(document.querySelectorAll("#routers > .router"), function (el) {
      if (labels.indexOf(el.getAttribute("data-router")) < 0) el.remove();
    });
    if (!labels.length && !document.querySelector("#routers .empty")) {
      document.getElementById("routers").innerHTML = '<div class="empty">No router has recorded metrics yet.</div>';
    } else if (labels.length) {
      var e = document.querySelector("#routers > .empty");
      if (e) e.remove();
    }
    var tsr = total.dsucc + total.dfail > 0 ? total.dsucc / (total.dsucc + total.dfail) :
      total.success + total.failures > 0 ? total.success / (total.success + total.failures) : null;
    setText(document, "#total-rps", total.anyRate ? fmtRate(total.rps) : "–");
    setText(document, "#total-sr", fmtPct(tsr), srClass(tsr));
    setText(document, "#total-requests", String(total.requests));
    setText(document, "#total-pending", String(total.pending));
    setText(document, "#total-routers", String(labels.length));
  }

  function fmtDuration(ms) {
    var s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return d > 0 ? d + "d " + h + "h" : h > 0 ? h + "h " + m + "m" : m > 0 ? m + "m " + (s % 60) + "s" : s + "s";
  }
  function fmtBytes(b) {
    var u = ["B", "KiB", "MiB", "GiB"], i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return (i ? b.toFixed(1) : String(b)) + " " + u[i];
  }

  // Process metrics (process/*), when the host publishes them.
  function renderProcess(tree) {
    var p = tree && tree.process;
    Array.prototype.forEach.call(document.querySelectorAll(".card.proc"), function (c) { c.hidden = !p; });
    if (!p) return;
    setText(document, "#proc-uptime", fmtDuration(num(p, "uptime_ms", "gauge")));
    setText(document, "#proc-goroutines", String(num(p, "goroutines", "gauge")));
    setText(document, "#proc-mem", p.mem ? fmtBytes(num(p.mem, "total_bytes", "gauge")) : "–");
  }

  function poll() {
    fetch("admin/metrics.json?tree=1", { cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("metrics.json: HTTP " + r.status);
        return r.json();
      })
      .then(function (tree) {
        render(tree, Date.now());
        renderProcess(tree);
        var st = document.getElementById("status");
        st.textContent = "updated " + new Date().toLocaleTimeString();
        st.className = "status";
      })
      .catch(function (err) {
        var st = document.getElementById("status");
        st.textContent = String(err.message || err);
        st.className = "status error";
      })
      .then(function () { setTimeout(poll, interval); });
  }

  if (onlyRouter) {
    document.getElementById("delegator-link").href = "delegator?router=" + encodeURIComponent(onlyRouter);
  }
  poll();
})();
