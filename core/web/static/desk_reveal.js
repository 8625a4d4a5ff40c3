// Switchboard web desk: a "reveal" button on each masked e-mail address or phone number.
// Clicking asks the server (POST /desk/api/reveal/...), which writes the reveal to the audit log.
"use strict";
(() => {
  const MASKED = /[^\s•@]?•••@•••\.[A-Za-z]{2,24}|\+?•••••••\d{2}/g;
  const list = document.getElementById("transcript");
  if (!list) return;

  function decorate(li) {
    if (li.dataset.revealable || !li.dataset.seq) return;
    li.dataset.revealable = "1";
    let index = 0;
    for (const node of Array.from(li.childNodes)) {
      if (node.nodeType !== Node.TEXT_NODE) continue;
      const text = node.textContent || "";
      MASKED.lastIndex = 0;
      if (!MASKED.test(text)) continue;
      MASKED.lastIndex = 0;
      const parts = [];
      let last = 0, match;
      while ((match = MASKED.exec(text)) !== null) {
        parts.push(document.createTextNode(text.slice(last, match.index)));
        const button = document.createElement("button");
        button.type = "button";
        button.className = "reveal";
        button.textContent = match[0];
        button.title = "Reveal (recorded in the audit log)";
        button.dataset.index = String(index++);
        button.addEventListener("click", () => reveal(li, button));
        parts.push(button);
        last = match.index + match[0].length;
      }
      parts.push(document.createTextNode(text.slice(last)));
      node.replaceWith(...parts);
    }
  }

  async function reveal(li, button) {
    const conversation = list.dataset.conversation;
    if (!conversation) return;
    button.disabled = true;
    const path = "/desk/api/reveal/" + encodeURIComponent(conversation) + "/" + li.dataset.seq + "/" + button.dataset.index;
    try {
      const response = await fetch(path, { method: "POST", credentials: "same-origin", headers: { "X-Desk-Request": "1" } });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || response.statusText);
      const span = document.createElement("span");
      span.className = "revealed";
      span.textContent = body.value;
      button.replaceWith(span);
    } catch (err) {
      button.disabled = false;
      button.title = "Could not reveal: " + err.message;
    }
  }

  new MutationObserver(() => list.querySelectorAll("li.entry[data-seq]").forEach(decorate))
    .observe(list, { childList: true });
})();
