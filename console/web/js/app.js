// The console's single page: hash routes, one view shown at a time. Each
// view is built once; `show()` starts its live updates, `hide()` stops them.
import { setupKeyPrompt } from './api.js';
import * as overview from './overview.js';
import * as aggregates from './aggregates.js';
import * as accuracy from './accuracy.js';
import * as deadLetters from './dead-letters.js';
import * as schemas from './schemas.js';

const VIEWS = {
  overview: { id: 'overview', view: overview },
  aggregates: { id: 'aggregates', view: aggregates },
  accuracy: { id: 'accuracy', view: accuracy },
  'dead-letters': { id: 'dead-letters', view: deadLetters },
  schemas: { id: 'schemas', view: schemas },
};

let current = null;

function route() {
  const name = (location.hash.replace(/^#\/?/, '').split(/[/?]/)[0]) || 'overview';
  const next = VIEWS[name] ? name : 'overview';
  if (current === next) return;
  if (current) {
    VIEWS[current].view.hide();
    document.getElementById(VIEWS[current].id).hidden = true;
  }
  current = next;
  document.getElementById(VIEWS[next].id).hidden = false;
  for (const a of document.querySelectorAll('header nav a')) {
    a.classList.toggle('active', a.getAttribute('data-testid') === `nav-${next}`);
  }
  VIEWS[next].view.show();
}

for (const { view } of Object.values(VIEWS)) view.init();
setupKeyPrompt(() => {
  // A key was given: restart the current view with it.
  if (!current) return;
  VIEWS[current].view.hide();
  VIEWS[current].view.show();
});
window.addEventListener('hashchange', route);
route();
