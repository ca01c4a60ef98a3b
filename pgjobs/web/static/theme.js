// pgjobs dashboard: the colour theme chosen with the header's toggle, applied
// before the page is drawn (a blocking script in <head>, so no flash of the
// other theme; a file, as the Content-Security-Policy forbids inline script).
// Without a choice the system's prefers-color-scheme decides (style.css).
(function () {
  "use strict";
  try {
    var chosen = localStorage.getItem("pgjobs.theme");
    if (chosen === "light" || chosen === "dark") {
      document.documentElement.setAttribute("data-theme", chosen);
    }
  } catch (e) { /* storage refused: the system's preference stands */ }
})();
