// sealkeeper console: small progressive enhancements; every page works without them.
(function () {
  "use strict";
  // Ask before destructive buttons (the server checks everything anyway).
  document.addEventListener("click", function (ev) {
    var el = ev.target.closest("[data-confirm]");
    if (el && !window.confirm(el.getAttribute("data-confirm"))) {
      ev.preventDefault();
    }
  });
  // Copy buttons: copy the text of the element named by data-copy.
  document.querySelectorAll("[data-copy]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var target = document.querySelector(btn.getAttribute("data-copy"));
      if (!target || !navigator.clipboard) { return; }
      navigator.clipboard.writeText(target.textContent.trim()).then(function () {
        var old = btn.textContent;
        btn.textContent = "Copied";
        setTimeout(function () { btn.textContent = old; }, 1500);
      });
    });
  });
  // File size limits: say it before uploading, next to the field.
  document.querySelectorAll("input[type=file][data-max-bytes]").forEach(function (input) {
    input.addEventListener("change", function () {
      var max = parseInt(input.getAttribute("data-max-bytes"), 10);
      var file = input.files && input.files[0];
      var msg = file && file.size > max ? "This file is larger than " + Math.round(max / 1048576) + " MB." : "";
      input.setCustomValidity(msg);
      var note = input.parentNode.querySelector(".js-size-error");
      if (!note) {
        note = document.createElement("p");
        note.className = "field-error js-size-error";
        note.setAttribute("aria-live", "polite");
        input.parentNode.appendChild(note);
      }
      note.textContent = msg;
    });
  });
  // Bulk grants: tick or clear a whole column.
  document.querySelectorAll("[data-toggle-column]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var boxes = document.querySelectorAll("input[data-column='" + btn.getAttribute("data-toggle-column") + "']:not(:disabled)");
      var all = Array.prototype.every.call(boxes, function (b) { return b.checked; });
      boxes.forEach(function (b) { b.checked = !all; });
    });
  });
})();
