// The knnie page: POST /extract, show entities inline and relations listed; a click on a relation
// shows its neighbours and how its probability splits between the model and the memory.
"use strict";

const $ = (id) => document.getElementById(id);
let current = null;  // the extraction shown

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c);  // strings become text nodes: no HTML injection
  return node;
}

function colour(type) {
  let h = 0;
  for (const ch of type || "") h = (h * 31 + ch.codePointAt(0)) % 360;
  return `hsl(${h}, 70%, 85%)`;
}

function fmt(p) {
  return p === null || p === undefined ? "n/a" : p.toFixed(3);
}

async function loadModels() {
  const health = await (await fetch("/health")).json();
  for (const [name, m] of Object.entries(health.models)) {
    const select = m.task === "ner" ? $("ner") : $("re");
    select.append(el("option", { value: name }, name));
  }
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function extract(event) {
  event.preventDefault();
  showError("");
  $("status").textContent = "extracting…";
  const body = { texts: [$("text").value], neighbours: Number($("neighbours").value),
                 ner: $("ner").value || null, re: $("re").value || null };
  try {
    const response = await fetch("/extract", { method: "POST", headers: { "Content-Type": "application/json" },
                                               body: JSON.stringify(body) });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    current = data.results[0];
    render(current);
    $("status").textContent = `${current.entities.length} entities, ${current.relations.length} relations`;
  } catch (e) {
    $("status").textContent = "";
    showError(String(e.message || e));
  }
}

function render(x) {
  const doc = $("doc");
  doc.replaceChildren();
  let at = 0;
  for (const e of [...x.entities].sort((a, b) => a.start - b.start)) {
    doc.append(x.text.slice(at, e.start));
    const mark = el("mark", { class: "entity", "data-id": String(e.id), title: `${e.type} ${fmt(e.score)}` },
                    x.text.slice(e.start, e.end), el("span", { class: "type" }, e.type));
    mark.style.background = colour(e.type);
    doc.append(mark);
    at = e.end;
  }
  doc.append(x.text.slice(at));
  $("warnings").replaceChildren(...x.warnings.map((w) => el("li", {}, w)));
  const byId = Object.fromEntries(x.entities.map((e) => [e.id, e]));
  const list = $("relations");
  list.replaceChildren(...x.relations.map((r, i) => {
    const item = el("li", { class: "relation", "data-index": String(i) },
                    `${byId[r.head].text} `, el("span", { class: "label" }, `— ${r.label} →`),
                    ` ${byId[r.tail].text}  (p = ${fmt(r.probability)})`);
    item.addEventListener("click", () => showRelation(i));
    return item;
  }));
  if (!x.relations.length) list.append(el("li", { class: "none" }, "no relation found"));
  $("result").hidden = false;
  $("panel").hidden = true;
}

function mentionSentence(n) {
  // a neighbour's sentence with its head and tail marked (records of relation examples have both)
  if (!n.head || !n.tail) return el("td", {}, n.text);
  const cell = el("td");
  const spans = [[n.head, "head"], [n.tail, "tail"]].sort((a, b) => a[0].start - b[0].start);
  let at = 0;
  for (const [s, cls] of spans) {
    cell.append(n.text.slice(at, s.start), el("span", { class: cls }, n.text.slice(s.start, s.end)));
    at = s.end;
  }
  cell.append(n.text.slice(at));
  return cell;
}

function setBar(id, p) {
  $(`p-${id}`).textContent = fmt(p);
  $(`bar-${id}`).style.width = `${Math.round(100 * (p || 0))}%`;
}

function showRelation(i) {
  const r = current.relations[i];
  const byId = Object.fromEntries(current.entities.map((e) => [e.id, e]));
  for (const li of document.querySelectorAll("#relations li")) li.classList.toggle("selected",
    li.dataset.index === String(i));
  for (const mark of document.querySelectorAll("#doc mark.entity")) {
    mark.classList.toggle("head", mark.dataset.id === r.head);
    mark.classList.toggle("tail", mark.dataset.id === r.tail);
  }
  $("panel-title").textContent = `${byId[r.head].text} — ${r.label} → ${byId[r.tail].text}`;
  setBar("final", r.probability);
  setBar("model", r.p_model);
  setBar("knn", r.p_knn);
  const rows = (r.neighbours || []).map((n) => el("tr", { class: "neighbour" }, mentionSentence(n),
    el("td", { class: "n-label" }, n.label), el("td", { class: "n-distance" }, n.distance.toFixed(2)),
    el("td", {}, n.memory)));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "4" }, "no neighbours asked for (set neighbours > 0)")));
  $("neighbours-table").tBodies[0].replaceChildren(...rows);
  $("panel").hidden = false;
}

$("form").addEventListener("submit", extract);
loadModels().catch((e) => showError(`cannot read /health: ${e}`));
