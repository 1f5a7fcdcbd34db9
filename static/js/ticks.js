// Ticks are the user's, not the server's: a region marked data-keep-ticks (the stream table)
// is replaced whole when a job ends or as its filter is typed, maybe by a request sent before
// the tick. Each box ticked there comes back ticked in every new copy of the region, named by
// its form, name and value; one that now belongs to another form (an adopted stream's) does not.
(function () {
  const ticked = new Set();
  const box = "[data-keep-ticks] input[type=checkbox]";
  const key = (input) => [input.getAttribute("form") || "", input.name, input.value].join("\n");
  document.addEventListener("change", function (event) {
    if (!event.target.matches(box)) return;
    if (event.target.checked) ticked.add(key(event.target));
    else ticked.delete(key(event.target));
  });
  document.addEventListener("htmx:load", function (event) {
    event.target.querySelectorAll(box).forEach(function (input) {
      if (ticked.has(key(input))) input.checked = true;
    });
  });
})();
