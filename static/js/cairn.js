// Cairn portal, progressive enhancement only: every page works without this file.
// - Forms with data-confirm ask before a destructive action.
// - Leaving a page with unsaved input in a form warns first.
(function () {
  "use strict";
  var dirty = false;
  document.addEventListener("input", function (e) {
    if (e.target.closest && e.target.closest("form[method=post]")) { dirty = true; }
  });
  document.addEventListener("submit", function (e) {
    var message = e.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { e.preventDefault(); return; }
    dirty = false;
  });
  window.addEventListener("beforeunload", function (e) {
    if (dirty) { e.preventDefault(); e.returnValue = ""; }
  });
})();
