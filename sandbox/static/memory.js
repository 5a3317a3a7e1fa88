// Memory dashboard: fetches /api/memory/user/stats (same origin) and renders
// #memory-dashboard with #memory-stats on 200, #memory-login-required on 401,
// #memory-error otherwise. A 401 is an expected state, not an error to log.
"use strict";

(function () {
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function label(key) {
    return key.replace(/_/g, " ").replace(/^./, function (c) { return c.toUpperCase(); });
  }

  function table(id, entries) {
    const t = el("table", { id: id });
    const body = el("tbody");
    for (const [key, value] of entries) {
      const row = el("tr");
      row.appendChild(el("th", { scope: "row" }, label(key)));
      row.appendChild(el("td", {}, String(value)));
      body.appendChild(row);
    }
    t.appendChild(body);
    return t;
  }

  function renderStats(dashboard, data) {
    dashboard.appendChild(el("h2", { class: "section" }, "Statistics"));
    dashboard.appendChild(table("memory-stats", Object.entries(data.stats || {})));
    dashboard.appendChild(el("h2", { class: "section" }, "Concepts"));
    const chips = el("ul", { class: "chips", id: "memory-concepts" });
    for (const [topic, count] of Object.entries(data.concepts || {})) chips.appendChild(el("li", {}, topic + " \u00b7 " + count));
    dashboard.appendChild(chips);
    dashboard.appendChild(el("h2", { class: "section" }, "Preferences"));
    dashboard.appendChild(table("memory-preferences", Object.entries(data.preferences || {})));
  }

  async function load() {
    const root = document.getElementById("memory-root");
    const dashboard = el("section", { id: "memory-dashboard", "aria-label": "Memory dashboard" });
    let state = "error";
    try {
      const response = await fetch("/api/memory/user/stats", {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.status === 401) {
        state = "login-required";
        dashboard.appendChild(el("p", { class: "notice", id: "memory-login-required" }, "Sign in to see your memory."));
      } else if (response.ok) {
        renderStats(dashboard, await response.json());
        state = "ok";
      } else {
        dashboard.appendChild(el("p", { class: "notice", id: "memory-error" }, "The memory service answered " + response.status + "."));
      }
    } catch (err) {
      dashboard.appendChild(el("p", { class: "notice", id: "memory-error" }, "The memory service is unreachable."));
    }
    dashboard.dataset.state = state;
    dashboard.dataset.ready = "true";
    root.appendChild(dashboard);
  }

  load();
})();
