// Switchboard desk: a "Review" button on each customer message sends it to the review queue.
(function () {
  "use strict";
  const list = document.getElementById("transcript");
  if (!list) return;

  function decorate() {
    list.querySelectorAll("li.entry.customer[data-seq]").forEach((li) => {
      if (li.querySelector("button.flag-review")) return;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link flag-review";
      button.textContent = "Review";
      button.title = "Send this message to the review queue (the bot should learn it)";
      button.addEventListener("click", async () => {
        button.disabled = true;
        const response = await fetch("/desk/api/review/flag", {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-Desk-Request": "1" },
          body: JSON.stringify({ conversation: list.dataset.conversation, seq: Number(li.dataset.seq) }),
        });
        button.textContent = response.ok ? "In review" : "Could not flag";
      });
      li.append(" ", button);
    });
  }

  new MutationObserver(decorate).observe(list, { childList: true });
  decorate();
})();
