// The mirror panel's browser side (an anywidget ES module, no build step, no network).
//
// Everything shown comes from the widget's synced fields, filled by the kernel
// (pairproxy/marimo/mirror/state.py); the owner's actions go back as messages
// ({type: "query" | "grant" | "deny" | "save_policy" | "reload_policy_text"}).
// No timers and no polling: the kernel pushes a field when the session flushes.
// Text is only ever set with textContent, never parsed as HTML.

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}

function replace(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

function plural(n, noun) {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function badge(decision) {
  return decision ? h("span", { class: `pp-badge pp-${decision}`, text: decision }) : null;
}

function pager(frame, key, send, noun) {
  const page = frame.page || 0;
  const pages = frame.pages || 1;
  const total = frame.total || 0;
  return h("div", { class: "pp-pager", "data-key": key },
    h("button", { class: "pp-newer", disabled: page <= 0, onclick: () => send({ [key]: page - 1 }), text: "← newer" }),
    h("span", { class: "pp-pageinfo", text: `page ${page + 1} of ${pages} · ${total} ${noun}` }),
    h("button", { class: "pp-older", disabled: page >= pages - 1, onclick: () => send({ [key]: page + 1 }), text: "older →" }),
  );
}

function render({ model, el }) {
  const send = (msg) => model.send(msg);
  const query = (changes) => send({ type: "query", query: changes });
  let tab = (model.get("query") || {}).tab || "ops";
  let dirty = false;

  // --- skeleton (built once; sections are refilled when their field changes) -----------
  const title = h("div", { class: "pp-title" });
  const stats = h("div", { class: "pp-stats" });
  const notice = h("div", { class: "pp-notice", role: "status" });
  const pending = h("div", { class: "pp-pending-list" });
  const tabs = h("div", { class: "pp-tabs", role: "tablist" });
  const panes = {};
  const tabButtons = {};
  for (const [name, label] of [["ops", "Ops"], ["objects", "Objects"], ["refusals", "Refusals"], ["approvals", "Approvals"], ["policy", "Policy"]]) {
    tabButtons[name] = h("button", { class: "pp-tab", role: "tab", "data-tab": name, text: label, onclick: () => show(name) });
    tabs.appendChild(tabButtons[name]);
    panes[name] = h("div", { class: "pp-pane", "data-pane": name });
  }

  // ops: filters + rows + pager
  const objectInput = h("input", { class: "pp-filter-object", type: "text", placeholder: "object: df or @3", spellcheck: "false" });
  const decisionSelect = h("select", { class: "pp-filter-decision" },
    h("option", { value: "", text: "any decision" }),
    ...["allow", "deny", "ask"].map((d) => h("option", { value: d, text: d })));
  const kindSelect = h("select", { class: "pp-filter-kind" }, h("option", { value: "", text: "any op kind" }));
  objectInput.addEventListener("keydown", (e) => { if (e.key === "Enter") query({ object: objectInput.value }); });
  objectInput.addEventListener("change", () => query({ object: objectInput.value }));
  decisionSelect.addEventListener("change", () => query({ decision: decisionSelect.value }));
  kindSelect.addEventListener("change", () => query({ kind: kindSelect.value }));
  const clear = h("button", { class: "pp-clear", text: "clear filters", onclick: () => query({ object: "", decision: "", kind: "" }) });
  const opsTop = h("div", { class: "pp-pager-slot" });
  const opsRows = h("div", { class: "pp-rows" });
  const opsBottom = h("div", { class: "pp-pager-slot" });
  panes.ops.append(h("div", { class: "pp-filters" }, objectInput, decisionSelect, kindSelect, clear), opsTop, opsRows, opsBottom);

  const objectsList = h("div", { class: "pp-objects" });
  const objectsPager = h("div", { class: "pp-pager-slot" });
  panes.objects.append(objectsPager, objectsList);

  const refusalsList = h("div", { class: "pp-refusals" });
  const refusalsPager = h("div", { class: "pp-pager-slot" });
  panes.refusals.append(refusalsPager, refusalsList);

  const answered = h("div", { class: "pp-answered" });
  panes.approvals.append(
    h("p", { class: "pp-help", text: "Requests waiting for you are listed at the top of the panel. Answered requests, most recent first:" }),
    answered);

  // policy: info, editor with line numbers, save
  const policyInfo = h("div", { class: "pp-policy-info" });
  const gutter = h("pre", { class: "pp-gutter", "aria-hidden": "true" });
  const editor = h("textarea", { class: "pp-policy-editor", spellcheck: "false", wrap: "off", rows: "22", "aria-label": "policy TOML" });
  const syncGutter = () => {
    const n = editor.value.split("\n").length;
    let text = "";
    for (let i = 1; i <= n; i++) text += i + "\n";
    gutter.textContent = text;
    // as tall as the file, within limits, so a short policy shows whole
    editorBox.style.height = `${Math.min(40, Math.max(12, n + 1)) * 1.45 * 12 + 14}px`;
    gutter.scrollTop = editor.scrollTop;
  };
  editor.addEventListener("input", () => { dirty = true; syncGutter(); });
  editor.addEventListener("scroll", () => { gutter.scrollTop = editor.scrollTop; });
  editor.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "s") { e.preventDefault(); save(); }
    e.stopPropagation(); // keep marimo's notebook shortcuts out of the editor
  });
  const save = () => send({ type: "save_policy", text: editor.value });
  const saveButton = h("button", { class: "pp-save pp-primary", text: "Save", onclick: save });
  const revertButton = h("button", { class: "pp-revert", text: "Revert to file", onclick: () => {
    // Show the text last read from the file now; the kernel re-reads the file and sends
    // it again if it changed meanwhile.
    dirty = false; updatePolicyText(); send({ type: "reload_policy_text" });
  } });
  const policyResult = h("div", { class: "pp-policy-result" });
  const editorBox = h("div", { class: "pp-editor" }, gutter, editor);
  panes.policy.append(policyInfo, editorBox,
    h("div", { class: "pp-editor-actions" }, saveButton, revertButton,
      h("span", { class: "pp-help", text: "Save checks the file as `pairproxy policy check` does, then reloads it; a file with problems is not saved." })),
    policyResult);

  const root = h("div", { class: "pp-mirror" },
    h("div", { class: "pp-head" }, title, stats), notice, pending, tabs, ...Object.values(panes));
  el.appendChild(root);

  function show(name) {
    // The kernel rebuilds only the list in view, so it is told which one that is.
    if (name !== ((model.get("query") || {}).tab || "ops")) query({ tab: name });
    tab = name;
    for (const [n, b] of Object.entries(tabButtons)) b.classList.toggle("pp-active", n === name);
    for (const [n, p] of Object.entries(panes)) p.hidden = n !== name;
  }

  // --- sections -----------------------------------------------------------------------
  function updateHead() {
    const s = model.get("status") || {};
    const p = model.get("policy") || {};
    replace(title,
      h("span", { class: "pp-name", text: "pairproxy mirror" }),
      h("span", { class: s.active ? "pp-live" : "pp-idle", text: s.active ? "● live" : "○ waiting for the agent" }),
      s.session ? h("span", { class: "pp-meta", text: `session ${s.session}` }) : null,
      h("span", { class: "pp-meta pp-policy-head" },
        "policy ", h("b", { text: p.name || "none" }),
        p.hash ? h("code", { class: "pp-hash", text: p.hash }) : null,
        p.path ? h("span", { class: "pp-path", text: p.path }) : null));
    replace(stats,
      h("span", { text: `${plural(s.records || 0, "record")} · ${plural(s.execs || 0, "agent run")}` }),
      h("span", { class: "pp-count pp-allow-text", text: `${s.allow || 0} allowed` }),
      h("span", { class: "pp-count pp-deny-text", text: `${s.deny || 0} denied` }),
      h("span", { class: "pp-count pp-ask-text", text: `${s.ask || 0} asked` }),
      s.pending ? h("span", { class: "pp-count pp-pending-count", text: `${s.pending} waiting for you` }) : null,
      s.log ? h("span", { class: "pp-meta", text: `log ${s.log}` }) : null);
    tabButtons.refusals.textContent = `Refusals (${s.refusals || 0})`;
    tabButtons.approvals.textContent = `Approvals${s.pending ? ` (${s.pending} waiting)` : ""}`;
  }

  function updateNotice() {
    const n = model.get("notice") || {};
    notice.textContent = n.text || "";
    notice.className = `pp-notice ${n.level === "error" ? "pp-notice-error" : ""}`;
    notice.hidden = !n.text;
  }

  function updatePending() {
    const a = model.get("approvals") || {};
    const items = a.pending || [];
    replace(pending, items.map((p) => h("div", { class: "pp-pending", "data-ask": p.id },
      h("div", { class: "pp-pending-text" },
        h("b", { text: `Approval #${p.id}` }), ` requested ${p.time || ""}: `,
        h("code", { class: "pp-optext", text: p.op }),
        h("div", { class: "pp-small", text: `rule ${p.rule}${p.reason ? ` — ${p.reason}` : ""}` })),
      h("div", { class: "pp-pending-actions" },
        h("button", { class: "pp-approve-once pp-primary", text: "Approve once", onclick: () => send({ type: "grant", ask: p.id, always: false }) }),
        h("button", { class: "pp-approve-always", text: "Always", title: "every later op of this kind on this member and root", onclick: () => send({ type: "grant", ask: p.id, always: true }) }),
        h("button", { class: "pp-deny", text: "Deny", onclick: () => send({ type: "deny", ask: p.id }) })))));
    replace(answered, (a.answered || []).length
      ? (a.answered || []).map((x) => h("div", { class: "pp-answer" },
          h("b", { text: `#${x.id}` }), " ", h("span", { class: `pp-state pp-state-${x.answer.split(" ")[0]}`, text: x.answer }),
          ` at ${x.time} `, h("code", { class: "pp-optext", text: x.op })))
      : [h("p", { class: "pp-empty", text: "No request answered yet." })]);
  }

  function opRow(r) {
    const cls = `pp-op-row pp-row-${r.decision || "event"} pp-kind-${r.kind.replace(".", "-")}`;
    const code = r.kind === "exec" ? h("pre", { class: "pp-code", text: r.text }) : h("code", { class: "pp-optext", text: r.text });
    return h("div", { class: cls, "data-seq": r.seq },
      h("span", { class: "pp-seq", text: String(r.seq) }),
      h("span", { class: "pp-time", text: r.time }),
      h("span", { class: "pp-actor", text: r.actor }),
      h("span", { class: "pp-dec" }, badge(r.decision) || h("span", { class: "pp-kindtag", text: r.kind })),
      h("span", { class: "pp-target", text: r.target }),
      h("span", { class: "pp-body" }, code,
        r.result ? h("span", { class: "pp-result", text: ` → ${r.result}` }) : null,
        r.error && r.kind !== "exec.end" ? h("span", { class: "pp-error", text: ` ! ${r.error}` }) : null,
        r.rule && r.decision !== "allow" ? h("span", { class: "pp-rule", text: ` [${r.rule}]` }) : null,
        r.message ? h("div", { class: "pp-message", text: r.message }) : null));
  }

  function updateOps() {
    const ops = model.get("ops") || {};
    const q = model.get("query") || {};
    if (document.activeElement !== objectInput) objectInput.value = q.object || "";
    decisionSelect.value = q.decision || "";
    const kinds = ops.kinds || [];
    const want = ["", ...kinds];
    const have = [...kindSelect.options].map((o) => o.value);
    if (want.join(",") !== have.join(",")) {
      replace(kindSelect, h("option", { value: "", text: "any op kind" }), kinds.map((k) => h("option", { value: k, text: k })));
    }
    kindSelect.value = q.kind || "";
    replace(opsTop, pager(ops, "page", query, "records"));
    replace(opsBottom, pager(ops, "page", query, "records"));
    const items = ops.items || [];
    replace(opsRows, items.length ? items.map(opRow)
      : [h("p", { class: "pp-empty", text: (model.get("status") || {}).active ? "No op matches these filters." : "No agent run yet: ops appear here as the agent works." })]);
  }

  function updateObjects() {
    const o = model.get("objects") || {};
    replace(objectsPager, pager(o, "objects_page", query, "values touched"));
    const items = o.items || [];
    replace(objectsList, items.length ? items.map((x) => h("div", { class: `pp-object ${x.live ? "" : "pp-released"}`, "data-ref": x.ref },
      h("div", { class: "pp-object-head" },
        h("code", { class: "pp-object-path", text: x.path }),
        h("span", { class: "pp-object-type", text: x.type }),
        h("span", { class: "pp-object-ref", text: `ref ${x.ref}@${x.ver}` }),
        h("span", { class: x.live ? "pp-tag-live" : "pp-tag-released", text: x.live ? "held" : "released" }),
        h("button", { class: "pp-object-ops", text: "its ops", onclick: () => { query({ object: `@${x.ref}`, decision: "", kind: "" }); show("ops"); } })),
      x.live ? h("pre", { class: "pp-describe", text: x.describe })
        : h("p", { class: "pp-small", text: `The session no longer holds this value (the agent let go of it); last seen at seq ${x.last_seq}.` })))
      : [h("p", { class: "pp-empty", text: "No value touched by the agent yet." })]);
  }

  function updateRefusals() {
    const r = model.get("refusals") || {};
    replace(refusalsPager, pager(r, "refusals_page", query, "refusals"));
    const items = r.items || [];
    replace(refusalsList, items.length ? items.map((x) => h("div", { class: `pp-refusal pp-row-${x.decision}`, "data-seq": x.seq },
      h("div", { class: "pp-refusal-head" },
        badge(x.decision), h("span", { class: "pp-seq", text: `#${x.seq}` }), h("span", { class: "pp-time", text: x.time }),
        h("code", { class: "pp-optext", text: x.text }), h("span", { class: "pp-rule", text: `[${x.rule}]` }),
        x.ask ? h("span", { class: `pp-state pp-state-${x.state.split(" ")[0]}`, text: `approval #${x.ask}: ${x.state}` }) : null),
      x.message ? h("pre", { class: "pp-message", text: x.message })
        : h("p", { class: "pp-small", text: "(the agent's code caught this refusal; its message was not kept)" })))
      : [h("p", { class: "pp-empty", text: "Nothing refused yet." })]);
  }

  function updatePolicy() {
    const p = model.get("policy") || {};
    replace(policyInfo,
      h("div", {}, h("b", { text: p.name || "(no policy)" }), p.hash ? h("code", { class: "pp-hash", text: p.hash }) : null,
        p.running ? h("span", { class: "pp-small", text: " in force" }) : null),
      p.path ? h("div", { class: "pp-path", text: p.path }) : null,
      p.note ? h("div", { class: "pp-small", text: p.note }) : null);
    editor.readOnly = !p.editable;
    saveButton.disabled = !p.editable;
  }

  function updatePolicyText() {
    if (!dirty) { editor.value = model.get("policy_text") || ""; syncGutter(); }
  }

  function updatePolicyResult() {
    const r = model.get("policy_result") || {};
    if (r.ok) { dirty = false; updatePolicyText(); }
    replace(policyResult, r.message ? [
      h("div", { class: r.ok ? "pp-ok" : "pp-fail", text: r.message }),
      (r.problems || []).length ? h("ul", { class: "pp-problems" }, r.problems.map((t) => h("li", { text: t }))) : null,
    ] : []);
  }

  model.on("change:status", updateHead);
  model.on("change:policy", () => { updateHead(); updatePolicy(); });
  model.on("change:notice", updateNotice);
  model.on("change:approvals", () => { updatePending(); updateHead(); });
  model.on("change:ops", updateOps);
  model.on("change:query", updateOps);
  model.on("change:objects", updateObjects);
  model.on("change:refusals", updateRefusals);
  model.on("change:policy_text", updatePolicyText);
  model.on("change:policy_result", updatePolicyResult);

  updateHead(); updateNotice(); updatePending(); updateOps(); updateObjects(); updateRefusals();
  updatePolicy(); updatePolicyText(); updatePolicyResult();
  show(tab);
}

export default { render };
