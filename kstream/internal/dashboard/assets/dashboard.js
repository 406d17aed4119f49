// The Streamwork dashboard: polls api/metrics and api/history every second
// and draws the topology (api/topology, fetched once) as a layered graph;
// api/group (the whole group's members) is polled beside them. Hand-written,
// no dependencies. Elements that tests read carry data- attributes:
// data-metric/data-value (totals), data-node (graph nodes, with
// data-node-in/data-node-out/data-node-rate/data-node-util once the node
// has numbers), data-lag-topic/data-lag-partition/data-lag (lag rows),
// data-task (tasks), data-member-instance/data-member-worker/
// data-member-tasks (group members), data-group-error; body's data-seq
// counts the renders.
"use strict";

const POLL_MS = 1000;
const SVG_NS = "http://www.w3.org/2000/svg";

const state = { topology: null, metrics: null, history: null, group: null, seq: 0 };

// ---- formatting -----------------------------------------------------------

function fmtInt(v) {
  return Number(v || 0).toLocaleString("en-US", { maximumFractionDigits: 0 });
}
function fmtRate(v) {
  if (v == null || !isFinite(v)) return "–";
  if (v >= 1e6) return (v / 1e6).toFixed(2) + "M";
  if (v >= 1e4) return (v / 1e3).toFixed(1) + "k";
  if (v >= 100) return fmtInt(v);
  return v.toFixed(1);
}
function fmtPct(v) {
  if (v == null || v < 0 || !isFinite(v)) return "–";
  return Math.round(v * 100) + "%";
}
function fmtDur(ns) {
  if (!ns) return "0";
  const ms = ns / 1e6;
  if (ms < 1) return (ns / 1e3).toFixed(0) + "µs";
  if (ms < 1000) return ms.toFixed(ms < 10 ? 1 : 0) + "ms";
  return (ms / 1000).toFixed(1) + "s";
}
// taskID formats a task id: JSON has it as "0_3" (TaskID.MarshalText); an
// object form is accepted too.
function taskID(id) {
  if (typeof id === "string") return id;
  return id ? id.Subtopology + "_" + id.Partition : "–";
}

// el makes an element: el("td", {class: "num"}, "12").
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c == null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c == null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
function table(head, rows) {
  const t = el("table", {});
  t.append(el("thead", {}, el("tr", {}, ...head.map(h => el("th", { class: h.num ? "num" : null }, h.label)))));
  const tb = el("tbody", {});
  rows.forEach(r => tb.append(r));
  t.append(tb);
  return t;
}

// ---- data helpers ---------------------------------------------------------

// partitions returns the per-partition rows: Partitions when the snapshot
// has them, else the Lag map.
function partitions(m) {
  if (m.Partitions && m.Partitions.length) return m.Partitions;
  const rows = [];
  for (const [topic, ps] of Object.entries(m.Lag || {})) {
    for (const [p, lag] of Object.entries(ps)) {
      rows.push({ Topic: topic, Partition: Number(p), Lag: lag, fromLag: true });
    }
  }
  rows.sort((a, b) => a.Topic < b.Topic ? -1 : a.Topic > b.Topic ? 1 : a.Partition - b.Partition);
  return rows;
}
function totalLag(m) {
  return partitions(m).reduce((s, p) => s + Math.max(p.Lag, 0), 0);
}
function lagByTopic(m) {
  const out = {};
  for (const p of partitions(m)) out[p.Topic] = (out[p.Topic] || 0) + Math.max(p.Lag, 0);
  return out;
}
function sumMap(o) { return Object.values(o || {}).reduce((s, v) => s + v, 0); }
function lastSample() {
  const s = state.history && state.history.Samples;
  return s && s.length ? s[s.length - 1] : null;
}

// ---- totals ---------------------------------------------------------------

function renderTotals(m) {
  const last = lastSample();
  let rate = null;
  if (m.Workers && m.Workers.length) rate = m.Workers.reduce((s, w) => s + w.RecordsPerSecond, 0);
  else if (last && state.history.Samples.length > 1) rate = last.RecordsPerSecond;
  let util = null;
  if (m.Workers && m.Workers.length) util = m.Workers.reduce((s, w) => s + w.Utilization, 0) / m.Workers.length;
  const cards = [
    ["records-processed", "Records processed", fmtInt(m.RecordsProcessed), m.RecordsProcessed, null],
    ["records-per-second", "Records/s", fmtRate(rate), rate == null ? "" : rate.toFixed(3), "over the last samples"],
    ["records-produced", "Records produced", fmtInt(m.RecordsProduced), m.RecordsProduced, fmtInt(m.ChangelogRecords) + " to changelogs"],
    ["lag", "Lag", fmtInt(totalLag(m)), totalLag(m), partitions(m).length + " partitions"],
    ["paused", "Paused partitions", fmtInt(m.Paused), m.Paused, "max " + fmtInt(m.MaxPaused)],
    ["utilization", "Utilization", fmtPct(util), util == null ? "" : util.toFixed(4), util == null ? "not reported" : "headroom " + fmtPct(1 - util)],
    ["tasks", "Tasks", fmtInt((m.Tasks || []).length), (m.Tasks || []).length, (m.RestoringTasks || []).length + " restoring"],
    ["commits", "Commits", fmtInt(m.Commits), m.Commits, fmtInt(m.Rebalances) + " rebalances"],
    ["errors", "Skipped / dead-lettered", fmtInt(sumMap(m.Skipped)) + " / " + fmtInt(sumMap(m.DeadLettered)), sumMap(m.Skipped) + sumMap(m.DeadLettered), null],
    ["late", "Late records", fmtInt(m.LateRecords), m.LateRecords, fmtInt(m.Shed) + " shed"],
  ];
  if (m.TransactionsAborted || m.WorkerRestarts) {
    cards.push(["aborts", "Aborted transactions", fmtInt(m.TransactionsAborted), m.TransactionsAborted, fmtInt(m.WorkerRestarts) + " worker restarts"]);
  }
  const box = document.getElementById("totals");
  box.replaceChildren(...cards.map(([key, label, shown, value, sub]) =>
    el("div", { class: "card" },
      el("div", { class: "label" }, label),
      el("div", { class: "value", "data-metric": key, "data-value": value }, shown),
      sub ? el("div", { class: "sub" }, sub) : null)));
}

// ---- topology layout ------------------------------------------------------

const NODE_W = 230, NODE_H = 62, TOPIC_H = 34, STORE_W = 170, STORE_H = 40;
const GAP_X = 22, GAP_Y = 42, PAD = 16, SUB_GAP = 28, TITLE_H = 22;

// layoutSub lays out one sub-topology: rows of items (input topics, nodes
// by longest path from the sources, output topics), ordered by the mean
// position of their parents, and a column of stores on the right.
function layoutSub(st) {
  const nodes = st.Nodes || [];
  const byName = new Map(nodes.map(n => [n.Name, n]));
  const rank = new Map();
  const rankOf = (n, seen) => {
    if (rank.has(n.Name)) return rank.get(n.Name);
    if (seen.has(n.Name)) return 0; // a cycle: should not happen
    seen.add(n.Name);
    let r = 0;
    for (const p of n.Predecessors || []) {
      const pn = byName.get(p);
      if (pn) r = Math.max(r, rankOf(pn, seen) + 1);
    }
    rank.set(n.Name, r);
    return r;
  };
  nodes.forEach(n => rankOf(n, new Set()));

  const items = [], edges = [];
  const rows = [];
  const put = (row, item) => { (rows[row] = rows[row] || []).push(item); items.push(item); return item; };
  const topicItems = new Map();
  const nodeItems = new Map();
  // Input topics on row 0.
  for (const n of nodes) {
    if (n.Kind !== "Source") continue;
    for (const t of n.Topics || []) {
      if (!topicItems.has("in:" + t)) topicItems.set("in:" + t, put(0, { kind: "topic", name: t, input: true, parents: [] }));
    }
  }
  for (const n of nodes) {
    const item = put(rank.get(n.Name) + 1, { kind: "node", name: n.Name, node: n, parents: [] });
    nodeItems.set(n.Name, item);
  }
  for (const n of nodes) {
    const item = nodeItems.get(n.Name);
    if (n.Kind === "Source") {
      for (const t of n.Topics || []) { const ti = topicItems.get("in:" + t); item.parents.push(ti); edges.push({ from: ti, to: item }); }
    }
    for (const p of n.Predecessors || []) {
      const pi = nodeItems.get(p);
      if (pi) { item.parents.push(pi); edges.push({ from: pi, to: item }); }
    }
  }
  // Output topics below their sinks.
  for (const n of nodes) {
    if (n.Kind !== "Sink") continue;
    const sink = nodeItems.get(n.Name);
    const topics = n.Dynamic ? ["(topic chosen per record)"] : (n.Topics || []);
    for (const t of topics) {
      const key = "out:" + t;
      let ti = topicItems.get(key);
      if (!ti) { ti = put(rank.get(n.Name) + 2, { kind: "topic", name: t, input: false, parents: [] }); topicItems.set(key, ti); }
      ti.parents.push(sink);
      edges.push({ from: sink, to: ti });
    }
  }
  // Order each row by the mean column of its parents (one pass down).
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r] || (rows[r] = []);
    row.forEach((it, i) => {
      it.bary = it.parents.length ? it.parents.reduce((s, p) => s + p.col, 0) / it.parents.length : i;
    });
    row.sort((a, b) => a.bary - b.bary);
    row.forEach((it, i) => { it.col = i; it.row = r; });
  }
  const cols = Math.max(1, ...rows.map(r => r.length));
  const width = cols * NODE_W + (cols - 1) * GAP_X;
  let y = TITLE_H + PAD;
  for (const row of rows) {
    const h = Math.max(...row.map(it => it.kind === "node" ? NODE_H : TOPIC_H), TOPIC_H);
    const rowW = row.length * NODE_W + (row.length - 1) * GAP_X;
    row.forEach((it, i) => {
      it.w = NODE_W;
      it.h = it.kind === "node" ? NODE_H : TOPIC_H;
      it.x = PAD + (width - rowW) / 2 + i * (NODE_W + GAP_X);
      it.y = y + (h - it.h) / 2;
    });
    y += h + GAP_Y;
  }
  // Stores: a column on the right, level with the first node using them.
  const stores = new Map();
  let storeBottom = 0;
  for (const n of nodes) {
    for (const s of n.Stores || []) {
      const user = nodeItems.get(n.Name);
      let si = stores.get(s);
      if (!si) {
        const sy = Math.max(user.y + (NODE_H - STORE_H) / 2, storeBottom);
        si = { kind: "store", name: s, x: PAD + width + GAP_X * 2, y: sy, w: STORE_W, h: STORE_H };
        storeBottom = sy + STORE_H + 10;
        stores.set(s, si);
        items.push(si);
      }
      edges.push({ from: user, to: si, store: true });
    }
  }
  const w = PAD * 2 + width + (stores.size ? GAP_X * 2 + STORE_W : 0);
  const h = Math.max(y - GAP_Y + PAD, storeBottom + PAD);
  return { id: st.ID, items, edges, w, h };
}

function truncate(s, n) { return s.length > n ? s.slice(0, n - 1) + "…" : s; }

// renderGraph draws the topology once; updateGraph then fills in numbers.
function renderGraph(topo) {
  const subs = (topo.Subtopologies || []).map(layoutSub);
  let x = 0, height = 0;
  for (const s of subs) { s.x = x; x += s.w + SUB_GAP; height = Math.max(height, s.h); }
  const width = Math.max(x - SUB_GAP, 200);
  const root = svg("svg", { width, height: height + 2, viewBox: `0 0 ${width} ${height + 2}`, role: "img", "aria-label": "Topology" });
  const defs = svg("defs", {},
    svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "currentColor", class: "arrowhead" })));
  root.append(defs);
  for (const s of subs) {
    const g = svg("g", { transform: `translate(${s.x},0)`, "data-subtopology": s.id });
    g.append(svg("rect", { class: "subbox", x: 0.5, y: 0.5, width: s.w - 1, height: s.h, rx: 8 }));
    g.append(svg("text", { class: "subtitle", x: PAD, y: 17 }, "Sub-topology " + s.id));
    for (const e of s.edges) {
      let d;
      if (e.store) {
        const x1 = e.from.x + e.from.w, y1 = e.from.y + e.from.h / 2, x2 = e.to.x, y2 = e.to.y + e.to.h / 2;
        d = `M ${x1} ${y1} C ${x1 + 30} ${y1}, ${x2 - 30} ${y2}, ${x2} ${y2}`;
      } else {
        const x1 = e.from.x + e.from.w / 2, y1 = e.from.y + e.from.h, x2 = e.to.x + e.to.w / 2, y2 = e.to.y;
        const my = (y1 + y2) / 2;
        d = `M ${x1} ${y1} C ${x1} ${my}, ${x2} ${my}, ${x2} ${y2 - 1}`;
      }
      g.append(svg("path", { class: "edge" + (e.store ? " store-edge" : ""), d, "marker-end": e.store ? null : "url(#arrow)", style: "color: var(--muted)" }));
    }
    for (const it of s.items) g.append(drawItem(it));
    root.append(g);
  }
  document.getElementById("graph").replaceChildren(root);
}

function drawItem(it) {
  if (it.kind === "topic") {
    const g = svg("g", { class: "topic", transform: `translate(${it.x},${it.y})`, "data-topic": it.name, "data-topic-input": it.input ? "true" : "false" });
    g.append(svg("title", {}, "topic " + it.name));
    g.append(svg("rect", { width: it.w, height: it.h, rx: it.h / 2 }));
    g.append(svg("text", { class: "mono", x: 14, y: it.input ? 14 : 21 }, truncate(it.name, 30)));
    if (it.input) g.append(svg("text", { class: "small topic-lag", x: 14, y: 28 }, ""));
    return g;
  }
  if (it.kind === "store") {
    const g = svg("g", { class: "store", transform: `translate(${it.x},${it.y})`, "data-store": it.name });
    const w = it.w, h = it.h, ry = 5;
    g.append(svg("title", {}, "store " + it.name));
    g.append(svg("path", { d: `M0 ${ry} A ${w / 2} ${ry} 0 0 0 ${w} ${ry} A ${w / 2} ${ry} 0 0 0 0 ${ry} L 0 ${h - ry} A ${w / 2} ${ry} 0 0 0 ${w} ${h - ry} L ${w} ${ry}` }));
    g.append(svg("text", { class: "mono", x: 10, y: 25 }, truncate(it.name, 22)));
    return g;
  }
  const n = it.node;
  const g = svg("g", { class: "node", transform: `translate(${it.x},${it.y})`, "data-node": n.Name, "data-kind": n.Kind });
  g.append(svg("title", {}, `${n.Kind} ${n.Name}`));
  g.append(svg("rect", { width: it.w, height: it.h, rx: 6 }));
  g.append(svg("text", { class: "mono", x: 10, y: 17 }, truncate(n.Name, 31)));
  g.append(svg("text", { class: "small", x: 10, y: 33 }, n.Kind.toLowerCase()));
  g.append(svg("text", { class: "small node-stats", x: 10, y: 50 }, "no node metrics yet"));
  g.append(svg("rect", { class: "utilbar", x: it.w - 58, y: 26, width: 48, height: 6, rx: 3 }));
  g.append(svg("rect", { class: "utilbar-fill", x: it.w - 58, y: 26, width: 0, height: 6, rx: 3 }));
  return g;
}

// updateGraph writes the numbers of m onto the drawn graph.
function updateGraph(m) {
  const byNode = new Map((m.Nodes || []).map(n => [n.Name, n]));
  for (const g of document.querySelectorAll("#graph [data-node]")) {
    const nm = byNode.get(g.getAttribute("data-node"));
    const stats = g.querySelector(".node-stats");
    const fill = g.querySelector(".utilbar-fill");
    g.classList.remove("hot", "busy");
    if (!nm) {
      stats.textContent = byNode.size ? "idle" : "no node metrics yet";
      for (const a of ["data-node-rate", "data-node-util", "data-node-in", "data-node-out"]) g.removeAttribute(a);
      fill.setAttribute("width", 0);
      continue;
    }
    const u = Math.max(0, Math.min(1, nm.Utilization || 0));
    stats.textContent = `${fmtRate(nm.RecordsPerSecond)} rec/s · ${fmtPct(u)} util · ${fmtPct(1 - u)} headroom`;
    g.setAttribute("data-node-rate", nm.RecordsPerSecond);
    g.setAttribute("data-node-util", nm.Utilization);
    g.setAttribute("data-node-in", nm.RecordsIn);
    g.setAttribute("data-node-out", nm.RecordsOut);
    g.querySelector("title").textContent = `${nm.Name}: ${fmtInt(nm.RecordsIn)} records in, ${fmtInt(nm.RecordsOut)} out`;
    fill.setAttribute("width", 48 * u);
    if (u >= 0.9) g.classList.add("busy"); else if (u >= 0.6) g.classList.add("hot");
  }
  const lags = lagByTopic(m);
  for (const g of document.querySelectorAll("#graph [data-topic-input='true']")) {
    const t = g.getAttribute("data-topic");
    // Internal topics are described by their short name and fetched under
    // "<application id>-<name>".
    const names = Object.keys(lags).filter(n => n === t || n.endsWith("-" + t));
    const txt = g.querySelector(".topic-lag");
    txt.textContent = names.length ? "lag " + fmtInt(names.reduce((s, n) => s + lags[n], 0)) : "lag –";
  }
}

// ---- lag, tasks, stores ---------------------------------------------------

function renderLag(m) {
  const rows = partitions(m);
  const box = document.getElementById("lag");
  if (!rows.length) { box.replaceChildren(el("p", { class: "muted" }, "No input partition has been fetched yet.")); return; }
  const maxLag = Math.max(1, ...rows.map(r => r.Lag));
  const detailed = !rows[0].fromLag;
  const head = [{ label: "Topic" }, { label: "Partition", num: true }];
  if (detailed) head.push({ label: "Task" }, { label: "Worker", num: true });
  head.push({ label: "Lag", num: true }, { label: "" });
  if (detailed) head.push({ label: "Buffered", num: true }, { label: "p99 latency", num: true }, { label: "" });
  box.replaceChildren(table(head, rows.map(r => {
    const tr = el("tr", { "data-lag-topic": r.Topic, "data-lag-partition": r.Partition, "data-lag": r.Lag },
      el("td", { class: "topic", title: r.Topic }, r.Topic), el("td", { class: "num" }, r.Partition));
    if (detailed) tr.append(el("td", {}, taskID(r.Task)), el("td", { class: "num" }, r.Worker));
    tr.append(el("td", { class: "num" }, r.Lag < 0 ? "unknown" : fmtInt(r.Lag)),
      el("td", {}, el("div", { class: "bar" + (r.Paused ? " paused" : "") }, el("span", { style: `width:${Math.max(0, r.Lag) / maxLag * 100}%` }))));
    if (detailed) {
      const tags = [];
      if (r.Paused) tags.push(el("span", { class: "tag warn" }, "paused"));
      if (r.Thrashing) tags.push(el("span", { class: "tag warn" }, "thrashing"));
      tr.append(el("td", { class: "num" }, fmtInt(r.Buffered)), el("td", { class: "num" }, fmtDur(r.LatencyP99)), el("td", {}, ...tags));
    }
    return tr;
  })));
}

function renderTasks(m) {
  const box = document.getElementById("tasks");
  const restoring = new Set((m.RestoringTasks || []).map(taskID));
  const chip = id => el("span", { class: "chip" + (restoring.has(taskID(id)) ? " restoring" : ""), "data-task": taskID(id) }, taskID(id));
  if (m.Workers && m.Workers.length) {
    const byWorker = new Map();
    for (const t of m.TaskStats || []) {
      if (!byWorker.has(t.Worker)) byWorker.set(t.Worker, []);
      byWorker.get(t.Worker).push(t);
    }
    box.replaceChildren(table(
      [{ label: "Worker", num: true }, { label: "Tasks" }, { label: "rec/s", num: true }, { label: "Util.", num: true },
        { label: "Headroom", num: true }, { label: "Commit", num: true }, { label: "Rebalances", num: true }],
      m.Workers.map(w => el("tr", { "data-worker": w.Worker },
        el("td", { class: "num" }, w.Worker),
        el("td", {}, ...(byWorker.get(w.Worker) || []).map(t => chip(t.ID))),
        el("td", { class: "num" }, fmtRate(w.RecordsPerSecond)),
        el("td", { class: "num" }, fmtPct(w.Utilization)),
        el("td", { class: "num" }, fmtPct(w.Headroom)),
        el("td", { class: "num" }, fmtDur(w.CommitLatency)),
        el("td", { class: "num" }, fmtInt(w.Rebalances))))));
    return;
  }
  const tasks = m.Tasks || [];
  if (!tasks.length) { box.replaceChildren(el("p", { class: "muted" }, "No task assigned to this instance.")); return; }
  box.replaceChildren(el("p", { class: "muted" }, "Tasks of this instance (sub-topology_partition):"), el("div", {}, ...tasks.map(chip)));
}

// renderGroup shows every member of the application's group (api/group:
// DescribeApplication), or the error describing it gave.
function renderGroup(v) {
  const panel = document.getElementById("group-panel");
  panel.hidden = !v;
  if (!v) return;
  const box = document.getElementById("group");
  const summary = document.getElementById("group-summary");
  if (v.Error || !v.Group) {
    summary.textContent = "as of " + new Date(v.Time).toLocaleTimeString();
    box.replaceChildren(el("p", { class: "error", "data-group-error": v.Error || "no description" }, "Cannot describe the group: " + (v.Error || "no description")));
    return;
  }
  const g = v.Group, members = g.Members || [];
  const instances = new Set(members.map(mb => mb.InstanceID));
  summary.textContent = `application ${g.AppID} · group ${g.State} · ${instances.size} instance${instances.size === 1 ? "" : "s"}, ` +
    `${members.length} member${members.length === 1 ? "" : "s"} · as of ${new Date(v.Time).toLocaleTimeString()}`;
  if (!members.length) { box.replaceChildren(el("p", { class: "muted" }, "The group has no members.")); return; }
  box.replaceChildren(table(
    [{ label: "Instance" }, { label: "Worker", num: true }, { label: "Tasks" }, { label: "Partitions", num: true }, { label: "Client" }, { label: "Host" }],
    members.map(mb => {
      const tasks = (mb.Tasks || []).map(taskID);
      const parts = Object.values(mb.Partitions || {}).reduce((s, ps) => s + ps.length, 0);
      return el("tr", { "data-member-instance": mb.InstanceID, "data-member-worker": mb.Worker, "data-member-tasks": tasks.join(" ") },
        el("td", { class: "mono" }, mb.InstanceID || "(unknown)"),
        el("td", { class: "num" }, mb.Worker < 0 ? "–" : mb.Worker),
        el("td", {}, ...(tasks.length ? tasks.map(id => el("span", { class: "chip" }, id)) : [el("span", { class: "muted" }, "none")])),
        el("td", { class: "num" }, parts),
        el("td", { class: "topic", title: mb.ClientID }, mb.ClientID),
        el("td", {}, mb.Host));
    })));
}

function renderStores(m) {
  const stores = m.Stores || [], restores = m.Restores || [];
  document.getElementById("stores-panel").hidden = !stores.length;
  document.getElementById("restores-panel").hidden = !restores.length;
  if (stores.length) {
    document.getElementById("stores").replaceChildren(table(
      [{ label: "Store" }, { label: "Task" }, { label: "Bytes", num: true }, { label: "Keys", num: true }],
      stores.map(s => el("tr", {}, el("td", {}, s.Name), el("td", {}, taskID(s.Task)),
        el("td", { class: "num" }, fmtInt(s.ApproxBytes)), el("td", { class: "num" }, s.ApproxKeys < 0 ? "–" : fmtInt(s.ApproxKeys))))));
  }
  if (restores.length) {
    document.getElementById("restores").replaceChildren(table(
      [{ label: "Store" }, { label: "Task" }, { label: "Done", num: true }, { label: "Left", num: true }, { label: "rec/s", num: true }, { label: "ETA", num: true }],
      restores.map(r => el("tr", {}, el("td", {}, r.Store), el("td", {}, taskID(r.Task)), el("td", { class: "num" }, fmtInt(r.Done)),
        el("td", { class: "num" }, fmtInt(r.Left)), el("td", { class: "num" }, fmtRate(r.RecordsPerSecond)), el("td", { class: "num" }, fmtDur(r.ETA))))));
  }
}

// ---- charts ---------------------------------------------------------------

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const f of [1, 2, 2.5, 5, 10]) if (v <= f * p) return f * p;
  return 10 * p;
}

// lineChart draws value(sample) over the history's time span.
function lineChart(id, samples, value, fmt, fixedMax) {
  const box = document.getElementById(id);
  const W = Math.max(box.clientWidth, 280), H = 150, L = 46, R = 10, T = 10, B = 20;
  const pts = samples.map(s => [s.Time, value(s)]).filter(p => p[1] != null && p[1] >= 0);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", "data-points": pts.length });
  if (pts.length < 2) {
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, pts.length ? "collecting…" : "no data yet"));
    box.replaceChildren(root);
    return;
  }
  const t0 = pts[0][0], t1 = pts[pts.length - 1][0];
  const ymax = fixedMax || niceMax(Math.max(...pts.map(p => p[1])));
  const sx = t => L + (t - t0) / Math.max(1, t1 - t0) * (W - L - R);
  const sy = v => T + (1 - v / ymax) * (H - T - B);
  for (const f of [0, 0.5, 1]) {
    root.append(svg("line", { class: f ? "grid" : "axis", x1: L, x2: W - R, y1: sy(ymax * f), y2: sy(ymax * f) }));
    root.append(svg("text", { x: L - 6, y: sy(ymax * f) + 4, "text-anchor": "end" }, fmt(ymax * f)));
  }
  const span = Math.round((t1 - t0) / 1000);
  root.append(svg("text", { x: L, y: H - 4 }, span >= 60 ? `−${Math.floor(span / 60)}m${span % 60 ? (span % 60) + "s" : ""}` : `−${span}s`));
  root.append(svg("text", { x: W - R, y: H - 4, "text-anchor": "end" }, "now"));
  const line = pts.map(p => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ");
  root.append(svg("polygon", { class: "area", points: `${sx(t0)},${sy(0)} ${line} ${sx(t1)},${sy(0)}` }));
  root.append(svg("polyline", { class: "series", points: line }));
  const lastV = pts[pts.length - 1][1];
  root.append(svg("text", { class: "last", x: W - R - 2, y: T + 12, "text-anchor": "end" }, fmt(lastV)));
  box.replaceChildren(root);
}

function renderCharts() {
  const samples = (state.history && state.history.Samples) || [];
  lineChart("chart-rate", samples.slice(1), s => s.RecordsPerSecond, fmtRate);
  lineChart("chart-lag", samples, s => s.Lag, fmtRate);
  const util = samples.filter(s => s.Utilization >= 0);
  if (!util.length && samples.length) {
    const box = document.getElementById("chart-util");
    box.replaceChildren(svg("svg", { viewBox: "0 0 280 150" }, svg("text", { x: 140, y: 75, "text-anchor": "middle" }, "not reported yet")));
  } else {
    lineChart("chart-util", util, s => s.Utilization, fmtPct, 1);
  }
}

// ---- polling --------------------------------------------------------------

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

// getGroup reads api/group; null when the handler has none (404), an
// error view when the request failed.
async function getGroup() {
  try {
    const r = await fetch("api/group", { cache: "no-store" });
    if (r.status === 404) return null;
    if (!r.ok) throw new Error("api/group: HTTP " + r.status);
    return await r.json();
  } catch (e) {
    return { Time: Date.now(), Error: e.message };
  }
}

function setStatus(kind, text) {
  const s = document.getElementById("status");
  s.setAttribute("data-status", kind);
  s.textContent = text;
}

async function loadTopology() {
  while (!state.topology) {
    try {
      state.topology = await getJSON("api/topology");
      renderGraph(state.topology);
    } catch (e) {
      setStatus("error", "topology: " + e.message);
      await new Promise(r => setTimeout(r, POLL_MS));
    }
  }
}

async function poll() {
  try {
    const [m, h] = await Promise.all([getJSON("api/metrics"), getJSON("api/history")]);
    state.metrics = m;
    state.history = h;
    renderTotals(m);
    if (state.topology) updateGraph(m);
    renderLag(m);
    renderTasks(m);
    renderStores(m);
    renderCharts();
    setStatus("live", "live");
    document.getElementById("updated").textContent = "updated " + new Date(m.Time).toLocaleTimeString();
    state.seq++;
    document.body.setAttribute("data-seq", state.seq);
  } catch (e) {
    setStatus("error", "offline: " + e.message);
  }
  setTimeout(poll, POLL_MS);
}

// pollGroup has a loop of its own: describing the group is a round trip to
// the brokers, which must not hold back the live numbers.
async function pollGroup() {
  state.group = await getGroup();
  renderGroup(state.group);
  setTimeout(pollGroup, POLL_MS);
}

loadTopology().then(() => { if (state.metrics) updateGraph(state.metrics); });
poll();
pollGroup();
