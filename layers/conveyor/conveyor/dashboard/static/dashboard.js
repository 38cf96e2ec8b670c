// The dashboard's only own script: CSRF header for htmx requests, pausing live parts while the tab is hidden,
// "select all" and confirmations. Everything also works without it (forms post, pages reload).
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');

  document.addEventListener("htmx:configRequest", function (event) {
    if (meta) event.detail.headers["X-CSRF-Token"] = meta.content;
  });

  // Live parts poll (hx-trigger="every Ns, refresh"); while the tab is hidden nothing is requested,
  // and the moment it is shown again each one refreshes once.
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (document.hidden && event.detail.elt.closest("[data-live]")) event.preventDefault();
  });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden || !window.htmx) return;
    document.querySelectorAll("[data-live]").forEach(function (elt) { window.htmx.trigger(elt, "refresh"); });
  });

  document.addEventListener("change", function (event) {
    var all = event.target.closest("[data-select-all]");
    if (!all) return;
    all.form.querySelectorAll('input[name="ids"]').forEach(function (box) { box.checked = all.checked; });
  });

  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var message = (button && button.getAttribute("data-confirm")) || event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });
})();
