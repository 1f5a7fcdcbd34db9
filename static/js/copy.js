// <button data-copy="ID"> puts the text of element ID on the clipboard. Delegated from the
// document: the element arrives later, in a region htmx swaps in. Without a secure context
// (plain HTTP to another host) there is no Clipboard API: the text is selected and copied.
(function () {
  function copied(button) {
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = "Copy"; }, 1500);
  }
  function bySelection(source, button) {
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    if (document.execCommand("copy")) copied(button);
  }
  document.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-copy]");
    const source = button && document.getElementById(button.dataset.copy);
    if (!source) return;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.textContent).then(
        function () { copied(button); }, function () { bySelection(source, button); });
    } else {
      bySelection(source, button);
    }
  });
})();
