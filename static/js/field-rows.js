// A field row checks itself on the server once left (templates/streams/_field_row.html), but
// not when it is left by pressing its form's submit button: the submit checks every field
// anyway, and a second request at the moment of the click slows the answer the person waits
// for (about 10 ms of a create's 50, measured by bench/bench_clicks.py). The change event comes
// between the pointer's down and up, so the button being pressed is known by then. A row left
// by the keyboard (Tab onto the button) still checks itself.
(function () {
  let pressed = null; // the form whose submit button is under a pressed pointer
  document.addEventListener("pointerdown", function (event) {
    const button = event.target.closest("button[type=submit], input[type=submit]");
    pressed = button ? button.form : null;
  }, true);
  const release = function () { pressed = null; };
  document.addEventListener("pointerup", release, true);
  document.addEventListener("pointercancel", release, true);
  document.addEventListener("htmx:confirm", function (event) {
    const cause = event.detail.triggeringEvent;
    if (pressed && cause && cause.type === "change" && event.detail.elt.matches(".field-row")
        && pressed.contains(event.detail.elt)) {
      event.preventDefault();
    }
  });
})();
