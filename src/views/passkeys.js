/* global window, document */
/**
 * The pages' one script, served after @simplewebauthn/browser's bundle in the same file (routes/assets.ts),
 * so it runs under `script-src 'self'` with nothing inline. Without JavaScript or WebAuthn nothing here runs
 * and the passkey parts of a page stay hidden: every other form works without it.
 *
 * A passkey form is a plain form that posts the ceremony's result (hidden `response` field) with its CSRF
 * token, and the server answers it like any form (303). Its markup declares everything:
 *   <div data-passkey hidden>                     shown where WebAuthn is available
 *   <form data-passkey-ceremony="authenticate|register" data-passkey-options="/path/options">
 *     <input type="hidden" name="csrf"> <input type="hidden" name="response"> ... <button type="submit">
 *   <p data-passkey-error role="alert" hidden>     where a failed ceremony is reported
 *   <p data-passkey-unavailable>                  what to do without passkeys, hidden where they work
 * A form with `data-passkey-autofill` also starts conditional mediation (passkey suggestions in the
 * `autocomplete="username webauthn"` field) when the browser supports it.
 * The options come from the form's options URL (POST, with the same CSRF token); the server stores their
 * challenge, single use, for this sign-in or session only.
 */
(function () {
  'use strict';
  var lib = window.SimpleWebAuthnBrowser;
  if (!lib || !lib.browserSupportsWebAuthn()) return;

  var NOT_DONE = 'The passkey was not used. Try again, or use another way to continue.';

  function showError(form, text) {
    var box = form.parentNode.querySelector('[data-passkey-error]');
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
  }

  function fetchOptions(form) {
    var csrf = form.querySelector('input[name=csrf]');
    var body = { csrf: csrf ? csrf.value : '' };
    var name = form.querySelector('input[name=name]');
    if (name) body.name = name.value;
    return fetch(form.getAttribute('data-passkey-options'), {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
    }).then(function (res) {
      if (!res.ok) throw new Error('options ' + res.status);
      return res.json();
    });
  }

  function submitWith(form, result) {
    form.querySelector('input[name=response]').value = JSON.stringify(result);
    // HTMLFormElement.submit() skips the submit event, so this listener does not run again.
    form.submit();
  }

  function ceremony(form, optionsJSON, autofill) {
    if (form.getAttribute('data-passkey-ceremony') === 'register') return lib.startRegistration({ optionsJSON: optionsJSON });
    return lib.startAuthentication({ optionsJSON: optionsJSON, useBrowserAutofill: autofill });
  }

  function startAutofill(form) {
    lib.browserSupportsWebAuthnAutofill().then(function (supported) {
      if (!supported) return;
      fetchOptions(form)
        .then(function (options) {
          return ceremony(form, options, true);
        })
        .then(function (result) {
          submitWith(form, result);
        })
        // Cancelled (another ceremony started, or the person typed a password instead): nothing to say.
        .catch(function () {});
    });
  }

  var sections = document.querySelectorAll('[data-passkey]');
  for (var i = 0; i < sections.length; i++) sections[i].hidden = false;
  var fallbacks = document.querySelectorAll('[data-passkey-unavailable]');
  for (var j = 0; j < fallbacks.length; j++) fallbacks[j].hidden = true;

  var forms = document.querySelectorAll('form[data-passkey-ceremony]');
  Array.prototype.forEach.call(forms, function (form) {
    var busy = false;
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (busy) return;
      busy = true;
      fetchOptions(form)
        .then(function (options) {
          return ceremony(form, options, false);
        })
        .then(function (result) {
          submitWith(form, result);
        })
        .catch(function () {
          busy = false;
          showError(form, NOT_DONE);
          if (form.hasAttribute('data-passkey-autofill')) startAutofill(form);
        });
    });
    if (form.hasAttribute('data-passkey-autofill')) startAutofill(form);
  });
})();
