// Switchboard web desk: queue, transcript, reply/note, claim/back/close, live updates (SSE).
// Everything shown is inserted with textContent (never innerHTML): texts come from customers.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const HEADERS = { "Content-Type": "application/json", "X-Desk-Request": "1" };
  const CHANNELS = { webchat: "Web chat", telegram: "Telegram", whatsapp: "WhatsApp" };
  let me = null;
  let selected = null;
  let current = null;
  let stream = null;
  let notePrefix = "!";

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  async function api(method, path, body) {
    const options = { method, headers: method === "GET" ? {} : HEADERS, credentials: "same-origin" };
    if (body !== undefined) options.body = JSON.stringify(body);
    const response = await fetch("/desk/api/" + path, options);
    let data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    if (response.status === 401 && path !== "login") { showLogin(); }
    if (!response.ok) { const err = new Error(data.error || ("HTTP " + response.status)); err.status = response.status; throw err; }
    return data;
  }

  function showError(node, message) {
    node.textContent = message || "";
    node.hidden = !message;
  }

  // -- login ---------------------------------------------------------------------------
  function showLogin() {
    me = null;
    if (stream) { stream.close(); stream = null; }
    $("app").hidden = true;
    $("login").hidden = false;
    $("login-agent").focus();
  }

  async function showApp(agent) {
    me = agent;
    $("login").hidden = true;
    $("app").hidden = false;
    $("me").textContent = agent.name;
    connect();
    await Promise.all([refreshQueue(), refreshDeadLetters()]);
  }

  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError($("login-error"), "");
    try {
      const data = await api("POST", "login", { agent: $("login-agent").value.trim(), password: $("login-password").value });
      $("login-password").value = "";
      await showApp(data.agent);
    } catch (err) {
      showError($("login-error"), err.status === 429 ? "Too many failed attempts. Please wait a few minutes." : err.message);
    }
  });

  $("logout").addEventListener("click", async () => {
    try { await api("POST", "logout", {}); } catch (e) { /* already logged out */ }
    showLogin();
  });

  // -- queue ---------------------------------------------------------------------------
  function since(iso) {
    if (!iso) return "";
    const minutes = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 60000));
    return minutes < 1 ? "just now" : minutes + " min";
  }

  function waited(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const minutes = Math.floor(seconds / 60);
    return minutes < 1 ? "just now" : minutes < 60 ? minutes + " min" : Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function clock(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    const today = new Date().toDateString() === d.toDateString();
    const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return today ? time : d.toLocaleDateString([], { day: "2-digit", month: "2-digit", year: "numeric" }) + " " + time;
  }

  function chips(c) {
    const box = el("span", "chips");
    if (c.status === "waiting" && c.priority_label) {
      const chip = el("span", "chip prio-" + c.priority_label, c.priority_label + " " + c.priority);
      chip.title = "Priority from frustration and waiting time";
      box.append(chip);
    }
    if (c.open_now === false) box.append(el("span", "chip after-hours", "after hours" + (c.back_at ? " · opens " + clock(c.back_at) : "")));
    return box;
  }

  function queueItem(c) {
    const li = el("li");
    const button = el("button");
    button.type = "button";
    button.dataset.id = c.id;
    button.setAttribute("aria-current", String(c.id === selected));
    const head = el("span", "q-head");
    head.append(el("span", "q-name", c.customer), chips(c));
    button.append(head);
    const meta = [CHANNELS[c.channel] || c.channel, c.language, c.bot, c.reason, c.intent,
      c.status === "agent" ? (c.assigned_name || "") : waited(c.waited_seconds)];
    button.append(el("span", "q-meta", meta.filter(Boolean).join(" · ")));
    if (c.last_text) button.append(el("span", "q-last", c.last_text));
    button.addEventListener("click", () => select(c.id));
    li.append(button);
    return li;
  }

  async function refreshQueue() {
    if (!me) return;
    const data = await api("GET", "queue");
    const byArrival = (a, b) => String(a.since || "").localeCompare(String(b.since || ""));
    const order = $("queue-sort").value === "priority"
      ? (a, b) => (b.priority - a.priority) || byArrival(a, b) : byArrival;
    const waiting = data.conversations.filter((c) => c.status === "waiting").sort(order);
    const withAgent = data.conversations.filter((c) => c.status === "agent");
    $("queue-waiting").replaceChildren(...waiting.map(queueItem));
    $("queue-agent").replaceChildren(...withAgent.map(queueItem));
    $("count-waiting").textContent = String(waiting.length);
    $("count-agent").textContent = String(withAgent.length);
  }

  // -- history and search ----------------------------------------------------------------
  function stars(ratings) {
    return ratings && ratings.length ? "rated " + ratings.map((r) => r + "/5").join(", ") : "";
  }

  function hitItem(h) {
    const li = el("li");
    const button = el("button");
    button.type = "button";
    button.dataset.id = h.id;
    button.setAttribute("aria-current", String(h.id === selected));
    const head = el("span", "q-head");
    head.append(el("span", "q-name", h.customer));
    head.append(el("span", "chip status-" + h.status, { waiting: "waiting", agent: "with agent", bot: "with bot", closed: "closed" }[h.status] || h.status));
    if (h.ratings.length) head.append(el("span", "chip rating", stars(h.ratings)));
    button.append(head);
    const meta = [h.channels.map((x) => CHANNELS[x] || x).join(", "), h.bot, h.agents.join(", "), clock(h.last_at)];
    button.append(el("span", "q-meta", meta.filter(Boolean).join(" · ")));
    if (h.snippet) button.append(el("span", "q-last", h.snippet));
    button.addEventListener("click", () => select(h.id));
    li.append(button);
    return li;
  }

  async function runSearch() {
    const params = new URLSearchParams();
    [["text", "search-text"], ["agent", "search-agent"], ["channel", "search-channel"], ["rating", "search-rating"],
      ["since", "search-since"], ["until", "search-until"]].forEach(([key, id]) => {
      const value = $(id).value.trim();
      if (value) params.set(key, value);
    });
    $("search-info").textContent = "Searching…";
    try {
      const data = await api("GET", "history?" + params.toString());
      $("search-results").replaceChildren(...data.results.map(hitItem));
      $("search-info").textContent = data.results.length + (data.results.length === 1 ? " conversation" : " conversations") + " found";
    } catch (err) {
      $("search-info").textContent = err.message;
    }
  }

  $("search-form").addEventListener("submit", (event) => { event.preventDefault(); runSearch(); });

  // -- dead letters (messages whose turn failed for good) ---------------------------------
  function deadLetterItem(d) {
    const li = el("li", "dead-letter");
    li.dataset.id = String(d.id);
    li.append(el("span", "q-name", d.text || "(no text)"));
    li.append(el("span", "q-meta", [CHANNELS[d.channel] || d.channel, d.bot, d.attempts + " attempts", since(d.dead_at)].join(" · ")));
    li.append(el("span", "q-last", d.error));
    const replay = el("button", "primary", "Replay");
    replay.type = "button";
    replay.dataset.action = "replay";
    replay.addEventListener("click", () => deadLetterAction(d.id, "replay"));
    const drop = el("button", "danger", "Drop");
    drop.type = "button";
    drop.dataset.action = "drop";
    drop.addEventListener("click", () => deadLetterAction(d.id, "drop"));
    const buttons = el("div", "actions");
    buttons.append(replay, drop);
    li.append(buttons);
    return li;
  }

  async function refreshDeadLetters() {
    if (!me) return;
    const data = await api("GET", "dead-letters");
    $("dead-letters").replaceChildren(...data.dead_letters.map(deadLetterItem));
    $("count-dead").textContent = String(data.dead_letters.length);
  }

  async function deadLetterAction(id, action) {
    try { await api("POST", "dead-letters/" + encodeURIComponent(id) + "/" + action, {}); }
    catch (err) { showError($("action-error"), err.message); }
    await refreshDeadLetters();
  }

  // -- one conversation ----------------------------------------------------------------
  async function select(id) {
    if (id !== selected) closeConfirm();
    selected = id;
    document.querySelectorAll(".queue button[data-id]").forEach((b) => b.setAttribute("aria-current", String(b.dataset.id === id)));
    showError($("action-error"), "");
    await refreshConversation();
  }

  function fact(dl, label, value) {
    if (value === null || value === undefined || value === "") return;
    dl.append(el("dt", null, label), el("dd", null, value));
  }

  function sentiment(value) {
    if (value === null || value === undefined) return null;
    const mood = value <= -0.6 ? "very negative" : value <= -0.3 ? "negative" : value >= 0.3 ? "positive" : "neutral";
    return mood + " (" + value.toFixed(2) + ")";
  }

  function entry(m) {
    const li = el("li", "entry " + m.role);
    li.dataset.seq = String(m.seq);  // desk_reveal.js, review-flag.js: the event of an entry
    const who = m.role === "customer" ? (current ? current.customer : "Customer") : m.role === "agent" ? (m.author || "Agent")
      : m.role === "note" ? "Internal note · " + (m.author || "Agent") : m.role === "bot" ? "Bot"
      : m.role === "system" ? "System" : null;
    const label = el("span", "who", who || "");
    if (who && m.channel && m.role !== "note") label.append(el("span", "chan", CHANNELS[m.channel] || m.channel));
    const time = el("time", "ts", clock(m.ts));
    time.dateTime = m.ts;
    label.append(time);
    li.append(label);
    li.append(document.createTextNode(m.text));
    if (m.revoked) { li.classList.add("revoked"); li.append(el("span", "edited", "deleted by the customer " + clock(m.revoked))); }
    if (m.versions && m.versions.length > 1) {
      const earlier = el("span", "edited", "edited · earlier: ");
      m.versions.slice(0, -1).forEach((v, n) => {
        if (n) earlier.append(" · ");
        earlier.append(el("s", null, v.text), " (" + clock(v.ts) + ")");
      });
      li.append(earlier);
    } else if (m.edited) li.append(el("span", "edited", "edited"));
    if (m.attachments && m.attachments.length && window.deskFiles) li.append(window.deskFiles.render(m, selected));
    if (m.buttons && m.buttons.length) li.append(el("span", "who", "[" + m.buttons.join("] [") + "]"));
    return li;
  }

  function render(data) {
    const c = data.conversation, s = data.summary;
    if (!current || current.id !== c.id) hideCustomerTyping();
    current = c;  // before the entries: they show the customer's name
    $("conversation").dataset.id = c.id;  // desk_files.js sends files to this conversation
    $("empty").hidden = true;
    $("conversation").hidden = false;
    $("conv-customer").textContent = c.customer;
    $("conv-status").textContent = { waiting: "waiting", agent: "with agent", bot: "with bot", closed: "closed" }[c.status] || c.status;
    $("conv-status").className = "badge " + c.status;
    $("conv-assigned").textContent = c.assigned_name ? "assigned to " + c.assigned_name : "";
    const facts = $("summary-facts");
    facts.replaceChildren();
    fact(facts, "Customer", s.customer);
    fact(facts, "Channel", (CHANNELS[s.channel] || s.channel) + (c.channels.length > 1 ? " (also " + c.channels.filter((x) => x !== s.channel).map((x) => CHANNELS[x] || x).join(", ") + ")" : ""));
    fact(facts, "Language", s.language);
    fact(facts, "Bot", c.bot);
    fact(facts, "Reason", s.reason);
    fact(facts, "Intent", s.intent);
    fact(facts, "Asked with", s.trigger_text);
    if (s.topic && s.topic !== s.intent) fact(facts, "Earlier topic", s.topic);
    fact(facts, "Sentiment", sentiment(s.sentiment));
    fact(facts, "Handed off", clock(s.since));
    if (c.status === "waiting") fact(facts, "Waiting", waited(s.waited_seconds));
    if (c.status === "waiting") fact(facts, "Priority", s.priority_label + " (" + s.priority + ")");
    if (s.open_now === false) fact(facts, "Hours", "arrived after hours: queued until opening" + (s.back_at ? " (" + clock(s.back_at) + ")" : ""));
    fact(facts, "Helped before by", s.previous_agent);
    fact(facts, "Rating", stars(c.ratings));
    const slots = $("summary-slots");
    slots.replaceChildren();
    Object.entries(s.slots || {}).forEach(([k, v]) => fact(slots, k, v));
    $("summary-slots-wrap").hidden = !slots.children.length;
    const list = $("transcript");
    list.dataset.conversation = c.id;
    list.replaceChildren(...data.transcript.map(entry));
    list.scrollTop = list.scrollHeight;
    const handedOff = c.status === "waiting" || c.status === "agent";
    const mine = c.status === "agent" && me && c.assigned_agent === "web:" + me.id;
    $("btn-claim").hidden = !(c.status === "waiting" || (c.status === "agent" && !mine));
    $("btn-claim").disabled = c.status !== "waiting";
    $("btn-back").disabled = !handedOff;
    renderCanned(data.canned || [], c.id);
    renderAssist(data.assist, handedOff);
    $("btn-transfer").disabled = !(c.status === "waiting" || mine);
    if ($("btn-transfer").disabled) closeTransfer();
    const options = [el("option", null, "The queue (any agent)")];
    options[0].value = "";
    (data.colleagues || []).forEach((a) => { const o = el("option", null, a.name); o.value = a.id; options.push(o); });
    const chosen = $("transfer-to").value;
    $("transfer-to").replaceChildren(...options);
    $("transfer-to").value = options.some((o) => o.value === chosen) ? chosen : "";
    $("btn-close").disabled = !handedOff;
    $("btn-reply").disabled = !(c.status === "waiting" || mine);
    // A closed conversation (or one back with the bot) is read-only history: no actions, no reply box.
    document.querySelector("#conversation .conv-head .actions").hidden = !handedOff;
    $("composer").hidden = !handedOff;
    if (!handedOff) closeConfirm();
  }

  async function refreshConversation() {
    if (!selected || !me) return;
    try {
      render(await api("GET", "conversations/" + encodeURIComponent(selected)));
    } catch (err) {
      if (err.status === 404) { selected = null; $("conversation").hidden = true; $("empty").hidden = false; }
      else showError($("action-error"), err.message);
    }
  }

  function isNote(text) { return text.trimStart().startsWith(notePrefix); }

  function updateHint() {
    const note = isNote($("composer-text").value);
    $("composer-hint").hidden = !note;
    $("btn-reply").textContent = note ? "Save as note" : "Send to customer";
  }

  async function act(action, body) {
    if (!selected) return;
    showError($("action-error"), "");
    try {
      // A text starting with the note prefix goes to "reply" like any other: the server stores it as a note.
      await api("POST", "conversations/" + encodeURIComponent(selected) + "/" + action, body);
      if (body && action !== "transfer") { $("composer-text").value = ""; updateHint(); }
    } catch (err) {
      showError($("action-error"), err.message);
    }
    await Promise.all([refreshConversation(), refreshQueue()]);
  }

  let cannedFor = null;
  let cannedTexts = [];
  function renderCanned(items, id) {
    $("canned-wrap").hidden = !items.length;
    const key = id + JSON.stringify(items);
    if (cannedFor === key) return;  // keep the control stable while the agent uses it
    cannedFor = key;
    cannedTexts = items.map((i) => i.text);
    const first = el("option", null, "Insert…");
    first.value = "";
    $("canned").replaceChildren(first, ...items.map((item, n) => { const o = el("option", null, item.title); o.value = String(n); return o; }));
  }

  function insertCanned(text) {
    const box = $("composer-text");
    const start = box.selectionStart ?? box.value.length, end = box.selectionEnd ?? box.value.length;
    box.value = box.value.slice(0, start) + text + box.value.slice(end);
    box.focus();
    box.setSelectionRange(start + text.length, start + text.length);
    updateHint();
  }

  // -- the assistant: suggested replies (inserted for the agent to edit, never sent by themselves) --
  let suggestions = [];
  function percent(x) { return Math.round((x || 0) * 100) + " %"; }
  function renderAssist(a, handedOff) {
    $("assist").hidden = !a;
    if (!a) return;
    $("assist-summary").textContent = a.summary || "";
    suggestions = handedOff ? (a.suggestions || []) : [];
    $("assist-for").textContent = a.message ? "for “" + a.message + "”" + (a.language ? " · " + a.language : "") : "";
    $("assist-suggestions").replaceChildren(...suggestions.map((s, n) => {
      const li = el("li");
      const use = el("button", "use", "Use " + (n + 1));
      use.type = "button";
      use.title = "Insert into the reply box (Alt+" + (n + 1) + ")";
      use.setAttribute("aria-keyshortcuts", "Alt+" + (n + 1));
      use.addEventListener("click", () => insertSuggestion(n));
      li.append(use, el("span", "s-meta", s.intent + " · " + percent(s.confidence)), el("span", "s-text", s.text));
      return li;
    }));
    $("assist-suggestions-wrap").hidden = !suggestions.length;
    const cases = a.previous_cases || [];
    $("assist-cases").replaceChildren(...cases.map((k) => el("li", null, [clock(k.since), k.reason,
      k.agents.length ? "helped by " + k.agents.join(", ") : "no agent", k.rating ? "rated " + k.rating + "/5" : "not rated"].join(" · "))));
    $("assist-cases-wrap").hidden = !cases.length;
  }
  function insertSuggestion(n) {
    const s = suggestions[n];
    if (!s || $("composer").hidden) return;
    const box = $("composer-text");
    if (!box.value.trim()) { box.value = ""; box.setSelectionRange(0, 0); }
    insertCanned(s.text);
  }
  document.addEventListener("keydown", (event) => {
    if (event.altKey && !event.ctrlKey && !event.metaKey && /^Digit[1-3]$/.test(event.code || "")) {
      const n = Number(event.code.slice(5)) - 1;
      if (suggestions[n]) { event.preventDefault(); insertSuggestion(n); }
    }
  });

  // -- alerts for new handoffs (opt-in): a sound and a browser notification ---------------
  const ALERT_KEY = "sb_desk_alerts";
  let alerts = localStorage.getItem(ALERT_KEY) === "on";
  let chime = null;
  function showAlertsState() {
    $("btn-notify").textContent = "Alerts: " + (alerts ? "on" : "off");
    $("btn-notify").setAttribute("aria-pressed", String(alerts));
  }
  $("btn-notify").addEventListener("click", async () => {
    alerts = !alerts;
    localStorage.setItem(ALERT_KEY, alerts ? "on" : "off");
    showAlertsState();
    if (alerts && "Notification" in window && Notification.permission === "default") {
      try { await Notification.requestPermission(); } catch (e) { /* the sound still plays */ }
    }
    if (alerts) { chime = chime || new Audio("/desk/notify.wav"); chime.load(); }
  });
  showAlertsState();
  async function alertHandoff(item) {
    if (!alerts) return;
    chime = chime || new Audio("/desk/notify.wav");
    chime.currentTime = 0;
    chime.play().catch(() => { /* autoplay refused before any click: the notification still shows */ });
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    let body = "A customer is waiting (" + item.bot + ")";
    try {
      const data = await api("GET", "queue");
      const c = (data.conversations || []).find((x) => x.id === item.conversation);
      if (c) body = c.customer + " · " + [CHANNELS[c.channel] || c.channel, c.intent, c.trigger_text].filter(Boolean).join(" · ");
    } catch (e) { /* the generic text will do */ }
    const note = new Notification("New handoff", { body, tag: "handoff-" + item.conversation });
    note.onclick = () => { window.focus(); select(item.conversation); note.close(); };
  }

  $("canned").addEventListener("change", () => {
    const n = $("canned").value;
    if (n !== "") insertCanned(cannedTexts[Number(n)]);
    $("canned").value = "";
  });
  document.addEventListener("keydown", (event) => {
    if (event.altKey && (event.key === "c" || event.key === "C" || event.code === "KeyC") && !$("canned-wrap").hidden) {
      event.preventDefault();
      $("canned").focus();
    }
  });

  function closeTransfer() {
    $("transfer-form").hidden = true;
    $("btn-transfer").setAttribute("aria-expanded", "false");
  }
  $("btn-transfer").addEventListener("click", () => {
    const open = $("transfer-form").hidden;
    $("transfer-form").hidden = !open;
    $("btn-transfer").setAttribute("aria-expanded", String(open));
    if (open) $("transfer-to").focus();
  });
  $("btn-transfer-cancel").addEventListener("click", closeTransfer);
  $("transfer-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const to = $("transfer-to").value || null;
    await act("transfer", { to, note: $("transfer-note").value.trim() });
    if ($("action-error").hidden) { $("transfer-note").value = ""; closeTransfer(); }
  });
  $("queue-sort").addEventListener("change", () => refreshQueue().catch(() => {}));
  $("btn-claim").addEventListener("click", () => act("claim"));
  $("btn-back").addEventListener("click", () => act("back"));
  function closeConfirm() { $("close-confirm").hidden = true; }
  $("btn-close").addEventListener("click", () => { $("close-confirm").hidden = false; $("btn-close-no").focus(); });
  $("btn-close-no").addEventListener("click", () => { closeConfirm(); $("btn-close").focus(); });
  $("btn-close-yes").addEventListener("click", async () => { closeConfirm(); await act("close"); });
  $("close-confirm").addEventListener("keydown", (event) => { if (event.key === "Escape") { closeConfirm(); $("btn-close").focus(); } });
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("composer-text").value.trim();
    if (text) act("reply", { text });
  });
  $("btn-note").addEventListener("click", () => {
    const text = $("composer-text").value.trim();
    if (text) act("note", { text });
  });
  // Typing: the agent in charge tells the customer at most every 3 s while writing a reply; never for a note.
  let lastTyping = 0;
  function signalTyping() {
    const text = $("composer-text").value;
    if (!selected || !current || !me || !text.trim() || isNote(text)) return;
    if (current.id !== selected || current.status !== "agent" || current.assigned_agent !== "web:" + me.id) return;
    const now = Date.now();
    if (now - lastTyping < 3000) return;
    lastTyping = now;
    api("POST", "conversations/" + encodeURIComponent(selected) + "/typing", {}).catch(() => { /* cosmetic */ });
  }
  $("composer-text").addEventListener("input", () => { updateHint(); signalTyping(); });
  $("composer-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      (event.shiftKey ? $("btn-note") : $("btn-reply")).click();
    }
  });

  // Customer typing (web chat, while this agent is in charge): shown until their message or 6 s of quiet.
  let customerTypingTimer = null;
  function hideCustomerTyping() { $("customer-typing").hidden = true; clearTimeout(customerTypingTimer); }
  function showCustomerTyping() {
    $("customer-typing").textContent = ((current && current.customer) || "Customer") + " is typing…";
    $("customer-typing").hidden = false;
    clearTimeout(customerTypingTimer);
    customerTypingTimer = setTimeout(hideCustomerTyping, 6000);
  }

  // -- live updates --------------------------------------------------------------------
  function connect() {
    if (stream) stream.close();
    stream = new EventSource("/desk/api/stream");
    stream.onopen = () => { $("live").textContent = "live"; $("live").className = "live on"; };
    stream.onerror = () => { $("live").textContent = "reconnecting…"; $("live").className = "live"; };
    stream.onmessage = (message) => {
      let item = {};
      try { item = JSON.parse(message.data); } catch (e) { return; }
      if (item.type === "hello") return;
      if (item.type === "dead_letter") { refreshDeadLetters().catch(() => {}); return; }
      if (item.type === "typing") { if (item.conversation === selected) showCustomerTyping(); return; }
      if (item.type === "handoff") alertHandoff(item);
      if (item.conversation === selected && item.type === "message") hideCustomerTyping();
      refreshQueue().catch(() => {});
      if (item.conversation && item.conversation === selected) refreshConversation();
    };
  }
  // Live updates come from the farm process that handled the event; with several processes
  // a slow poll keeps every desk current.
  setInterval(() => {
    if (me) { refreshQueue().catch(() => {}); refreshDeadLetters().catch(() => {}); refreshConversation(); }
  }, 20000);

  api("GET", "me").then((data) => { if (data.note_prefix) notePrefix = data.note_prefix; return showApp(data.agent); }).catch(() => showLogin());
})();
