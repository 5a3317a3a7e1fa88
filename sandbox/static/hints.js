// ProactiveHints: fetches /api/hints and renders one dismissible card per hint
// into #hints-root as <section id="proactive-hints" data-ready="true">.
// The body's data-faults attribute lists the page faults the server injects.
"use strict";

(function () {
  const faults = new Set((document.body.dataset.faults || "").split(",").filter(Boolean));

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function showEmptyIfDone(section) {
    if (!section.querySelector(".hint")) {
      section.appendChild(el("p", { class: "empty" }, "No more hints for now."));
    }
  }

  function card(hint, section) {
    const article = el("article", { class: "hint", "data-hint-id": hint.id });
    article.appendChild(el("span", { class: "kind" }, hint.kind));
    article.appendChild(el("h2", {}, hint.title));
    article.appendChild(el("p", {}, hint.body));
    const dismiss = el("button", { type: "button", class: "dismiss", "aria-label": "Dismiss: " + hint.title }, "\u00d7");
    dismiss.addEventListener("click", function () {
      article.remove();
      showEmptyIfDone(section);
    });
    article.appendChild(dismiss);
    return article;
  }

  function render(root, hints) {
    const section = el("section", { id: "proactive-hints", class: "hints", "aria-label": "Proactive hints" });
    for (const hint of hints) section.appendChild(card(hint, section));
    showEmptyIfDone(section);
    section.dataset.ready = "true";
    root.appendChild(section);
  }

  async function load() {
    const root = document.getElementById("hints-root");
    let response;
    try {
      response = await fetch("/api/hints", { headers: { Accept: "application/json" } });
    } catch (err) {
      root.appendChild(el("p", { class: "notice", id: "hints-unavailable" }, "Hints are unavailable right now."));
      return;
    }
    if (!response.ok) {
      root.appendChild(el("p", { class: "notice", id: "hints-unavailable" }, "Hints are unavailable right now."));
      return;
    }
    const hints = await response.json();
    if (!faults.has("hints_missing")) render(root, hints);
    if (faults.has("console_error")) console.error("ProactiveHints: failed to sync dismissed hints");
    if (faults.has("js_error")) {
      setTimeout(function () {
        throw new Error("ProactiveHints: hint state is corrupt");
      }, 0);
    }
  }

  load();
})();
