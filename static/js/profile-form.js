// Show only the credential fields the chosen authentication method uses. Without JavaScript
// every field stays visible and the server still validates what each method needs.
(function () {
  const method = document.getElementById("id_auth_method");
  if (!method) return;
  function update() {
    document.querySelectorAll("[data-auth]").forEach(function (group) {
      group.hidden = !group.dataset.auth.split(" ").includes(method.value);
    });
  }
  method.addEventListener("change", update);
  update();
})();
