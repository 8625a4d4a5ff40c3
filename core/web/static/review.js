// Switchboard review page: list the review queue, label messages, retrain and show `test nlu` before/after.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const HEADERS = { "Content-Type": "application/json", "X-Desk-Request": "1" };
  const REASONS = { fallback: "fallback", low_confidence: "low confidence", handoff: "handoff",
                    low_rating: "low rating", flagged: "flagged by an agent", imported: "imported" };
  let state = null;

  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text != null) node.textContent = text;
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    return node;
  }

  async function api(method, path, body) {
    const response = await fetch(path, { method, headers: HEADERS, credentials: "same-origin",
                                         body: body === undefined ? undefined : JSON.stringify(body) });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) { const error = new Error(data.error || response.statusText); error.status = response.status; throw error; }
    return data;
  }

  function showError(message) { $("error").textContent = message; $("error").hidden = !message; }

  function why(item) {
    return item.reasons.map((r) => (REASONS[r] || r)
      + (r === "handoff" && item.handoff_reason ? " (" + item.handoff_reason + ")" : "")
      + (r === "low_rating" && item.rating ? " (" + item.rating + "/5)" : "")).join(", ");
  }

  function labelCell(item) {
    const cell = el("td");
    const form = el("form", null, { "data-id": item.id, "aria-label": "Label: " + item.text });
    const select = el("select", null, { "aria-label": "Intent for: " + item.text, name: "intent" });
    select.append(el("option", "— intent —", { value: "" }));
    state.intents.forEach((name) => {
      const option = el("option", name, { value: name });
      if (item.label === name) option.selected = true;
      select.append(option);
    });
    const holdout = el("input", null, { type: "checkbox", name: "holdout" });
    holdout.checked = item.holdout;
    const hold = el("label", " hold out for testing");
    hold.prepend(holdout);
    const save = el("button", "Label", { type: "submit" });
    const scope = el("button", "Out of scope", { type: "button" });
    const disabled = !state.can_label;
    [select, holdout, save, scope].forEach((n) => { n.disabled = disabled; });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!select.value) { showError("Pick an intent first."); return; }
      await label(item.id, { intent: select.value, holdout: holdout.checked });
    });
    scope.addEventListener("click", () => label(item.id, { intent: null, out_of_scope: true }));
    form.append(select, " ", hold, " ", save, " ", scope);
    const status = item.status === "labelled" ? "labelled " + item.label + (item.holdout ? " (held out)" : "")
      : item.status === "out_of_scope" ? "out of scope" : "";
    if (status) form.append(el("div", status, { class: "muted state" }));
    cell.append(form);
    return cell;
  }

  function render() {
    const body = document.querySelector("#items tbody");
    body.replaceChildren(...state.items.map((item) => {
      const row = el("tr", null, { "data-id": item.id });
      row.append(el("td", item.text, { class: "text" }), el("td", why(item), { class: "why" }),
                 el("td", (item.predicted_intent || "—") + (item.confidence != null ? " (" + item.confidence.toFixed(2) + ")" : "")),
                 labelCell(item));
      return row;
    }));
    $("empty").hidden = state.items.length > 0;
    $("retrain").disabled = !state.can_label;
    renderRun(state.run);
  }

  function pct(value) { return value == null ? "—" : (value * 100).toFixed(0) + " %"; }

  function renderRun(run) {
    $("run").hidden = !run;
    if (!run) return;
    const body = document.querySelector("#run-table tbody");
    const names = { labelled: "Labelled messages (trained on)", held_out: "Held-out messages (never trained on)" };
    body.replaceChildren(...Object.keys(names).map((key) => {
      const row = el("tr", null, { "data-set": key });
      row.append(el("th", names[key], { scope: "row" }),
                 el("td", String(run.after[key].examples)), el("td", pct(run.before[key].accuracy), { class: "before" }),
                 el("td", pct(run.after[key].accuracy), { class: "after" }));
      return row;
    }));
    $("run-detail").textContent = "Retrained by " + run.by + " at " + new Date(run.at).toLocaleString()
      + " in " + run.train_seconds + " s; model " + (run.model || "?") + " now answers customers.";
    const errors = [...run.after.labelled.misclassified, ...run.after.held_out.misclassified];
    $("run-errors").replaceChildren(...errors.map((e) => el("li", "still wrong: “" + e.text + "” → " + e.predicted + " (should be " + e.intent + ")")));
  }

  async function load() {
    const bot = $("bot").value;
    const params = new URLSearchParams({ status: $("status").value });
    if (bot) params.set("bot", bot);
    try {
      state = await api("GET", "/desk/api/review?" + params);
    } catch (error) {
      if (error.status === 401) { $("signin").hidden = false; $("review").hidden = true; return; }
      showError(error.message);
      return;
    }
    if (!$("bot").options.length) state.bots.forEach((b) => $("bot").append(el("option", b, { value: b })));
    $("bot").value = state.bot;
    $("review").hidden = false;
    render();
  }

  async function label(id, body) {
    showError("");
    try {
      await api("POST", "/desk/api/review/items/" + encodeURIComponent(id), body);
      await load();
    } catch (error) { showError(error.message); }
  }

  $("bot").addEventListener("change", load);
  $("status").addEventListener("change", load);
  $("retrain").addEventListener("click", async () => {
    showError("");
    $("retrain").disabled = true;
    $("retrain-state").textContent = "training…";
    try {
      const data = await api("POST", "/desk/api/review/retrain", { bot: state.bot });
      $("retrain-state").textContent = "done";
      state.run = data.run;
      renderRun(data.run);
    } catch (error) {
      $("retrain-state").textContent = "";
      showError(error.message);
    } finally { $("retrain").disabled = !state.can_label; }
  });
  load();
})();
