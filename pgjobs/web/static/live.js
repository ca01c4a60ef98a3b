// pgjobs dashboard: live refresh and confirmations, hand-written, no dependencies.
//
// Live refresh re-fetches the current page every N seconds (body data-refresh)
// and swaps the <main id="live"> region, so the server renders every state.
// It pauses while the tab is hidden, while a form field has focus, while
// the user has text selected or jobs ticked, and when the "live" toggle is off.
(function () {
  "use strict";
  var seconds = Number(document.body.getAttribute("data-refresh") || 0);
  var key = "pgjobs.live";
  var enabled = localStorage.getItem(key) !== "off";
  var toggle = document.getElementById("live-toggle");
  var busy = false;

  function paint() {
    if (!toggle) return;
    toggle.textContent = enabled ? "live ●" : "live ○";
    toggle.classList.toggle("paused", !enabled);
  }

  function interacting() {
    var active = document.activeElement;
    if (active && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) return true;
    var sel = window.getSelection && window.getSelection();
    if (sel && String(sel).length > 0) return true;
    // Ticked jobs in the jobs list: a refresh would untick them.
    if (document.querySelector("input[name=ids]:checked")) return true;
    return document.querySelector("details[open][data-user]") !== null;
  }

  function refresh() {
    if (!enabled || busy || document.hidden || interacting()) return;
    busy = true;
    fetch(window.location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("live");
        var here = document.getElementById("live");
        if (!fresh || !here) return;
        // Keep the open/closed state of error tracebacks across refreshes.
        var open = Array.prototype.map.call(here.querySelectorAll("details"), function (d) { return d.open; });
        here.innerHTML = fresh.innerHTML;
        Array.prototype.forEach.call(here.querySelectorAll("details"), function (d, i) {
          if (i < open.length) d.open = open[i];
        });
        document.body.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () { /* the next tick tries again */ })
      .then(function () { busy = false; });
  }

  if (toggle) {
    toggle.addEventListener("click", function () {
      enabled = !enabled;
      localStorage.setItem(key, enabled ? "on" : "off");
      paint();
    });
  }
  paint();
  if (seconds > 0) window.setInterval(refresh, seconds * 1000);

  // Confirmation: a form with data-confirm asks first; the server also asks
  // (a confirmation page) when the "confirm" field is not "yes", so actions
  // stay behind a confirmation without JavaScript too.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    var field = form.querySelector && form.querySelector("input[name=confirm]");
    if (!question || !field || field.value === "yes") return;
    if (window.confirm(question)) {
      field.value = "yes";
    } else {
      event.preventDefault();
    }
  }, true);

  // The theme toggle: light or dark, remembered in this browser (theme.js
  // applies it on the next page before it is drawn).
  var theme = document.getElementById("theme-toggle");
  function current() {
    var set = document.documentElement.getAttribute("data-theme");
    if (set) return set;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  function paintTheme() {
    if (!theme) return;
    var now = current();
    theme.textContent = now === "dark" ? "light mode" : "dark mode";
    theme.setAttribute("aria-pressed", now === "dark" ? "true" : "false");
  }
  if (theme) {
    theme.addEventListener("click", function () {
      var next = current() === "dark" ? "light" : "dark";
      document.documentElement.setAttribute("data-theme", next);
      try { localStorage.setItem("pgjobs.theme", next); } catch (e) { /* not remembered */ }
      paintTheme();
    });
  }
  paintTheme();

  // "Go back" links: the previous page when there is one, else their href.
  // (Here, not in a javascript: URL, which the Content-Security-Policy forbids.)
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-back]");
    if (!link || window.history.length < 2) return;
    event.preventDefault();
    window.history.back();
  });
})();
