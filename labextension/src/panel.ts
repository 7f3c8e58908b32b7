/**
 * The sidebar's DOM: an Ask box with the last answer under it, then Connections, Schema,
 * Semantic model and History, redrawn from the SidebarModel. Every action works from the keyboard: items are
 * focusable, Enter does what a double-click does, and buttons say what they do.
 */
import { Widget } from '@lumino/widgets';

import {
  askCell,
  canRate,
  formatDuration,
  formatRows,
  formatTime,
  historyCell,
  ICube,
  IMember,
  LOAD_EXT,
  MemberKind,
  memberCell,
  SidebarModel,
  statusLabel,
  tableCell,
  tableLabel
} from './model';

/** What the panel asks JupyterLab and the kernel to do. */
export interface IActions {
  insertCell(text: string, run: boolean): void;
  test(name: string): void;
  remove(name: string): void;
  /** Thumbs up (true) or down on the last answer. */
  feedback(good: boolean): void;
}

type Child = Node | string;

function h(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    element.setAttribute(key, value);
  }
  element.append(...children);
  return element;
}

function button(label: string, title: string, onClick: () => void, cls = ''): HTMLElement {
  const element = h('button', { type: 'button', title, 'aria-label': title, 'data-key': title, class: `aiser-sb-button ${cls}` }, label);
  element.addEventListener('click', onClick);
  return element;
}

/** A focusable row that a double-click or Enter acts on. */
function actionable(element: HTMLElement, act: () => void): HTMLElement {
  element.tabIndex = 0;
  element.dataset.key = element.title;
  element.addEventListener('dblclick', act);
  element.addEventListener('keydown', event => {
    if (event.key === 'Enter') {
      event.preventDefault();
      act();
    }
  });
  return element;
}

export class SidebarPanel extends Widget {
  private _body: HTMLElement;
  private _search: HTMLInputElement;
  private _expanded = new Set<string>();
  private _closed = new Set<string>();

  constructor(
    readonly model: SidebarModel,
    private _actions: IActions
  ) {
    super();
    this.addClass('aiser-sidebar');
    this.id = 'aiser-sidebar';
    this.title.caption = 'aiser: connections, schema, model, history';

    const question = h('input', {
      type: 'text',
      class: 'aiser-sb-ask-input',
      placeholder: 'Ask a question about the data…',
      'aria-label': 'Ask a question about the data (inserts and runs a %%ask cell)'
    }) as HTMLInputElement;
    const ask = h('form', { class: 'aiser-sb-ask', role: 'search' }, question, h('button', { type: 'submit', class: 'aiser-sb-button aiser-sb-primary' }, 'Ask'));
    ask.addEventListener('submit', event => {
      event.preventDefault();
      if (question.value.trim() && this.model.status === 'ready') {
        this._actions.insertCell(askCell(question.value), true);
        question.value = '';
      }
    });

    this._search = h('input', {
      type: 'search',
      class: 'aiser-sb-search',
      placeholder: 'Search tables and columns',
      'aria-label': 'Search tables and columns',
      'data-key': 'search'
    }) as HTMLInputElement;
    this._search.addEventListener('input', () => this.model.setSearch(this._search.value));

    this._body = h('div', { class: 'aiser-sb-body' });
    this.node.append(ask, this._body);
    model.onChange(() => this.render());
    this.render();
  }

  render(): void {
    const { status } = this.model;
    const sections: HTMLElement[] = [];
    this.node.classList.toggle('aiser-sb-ready', status === 'ready');
    if (status === 'no-notebook') {
      sections.push(h('p', { class: 'aiser-sb-empty', role: 'status' }, 'Open a notebook to see what its kernel is connected to.'));
    } else if (status === 'connecting') {
      sections.push(h('p', { class: 'aiser-sb-empty', role: 'status' }, 'Connecting to the kernel…'));
    } else if (status === 'not-loaded') {
      sections.push(
        h(
          'div',
          { class: 'aiser-sb-empty aiser-sb-not-loaded', role: 'status' },
          h('p', {}, 'Run ', h('code', {}, LOAD_EXT), ' in this kernel to see its connections, schema, semantic model and history here.'),
          button('Insert and run it', `Insert and run ${LOAD_EXT}`, () => this._actions.insertCell(LOAD_EXT, true), 'aiser-sb-primary')
        )
      );
    } else {
      if (this.model.notice) {
        const { ok, message } = this.model.notice;
        sections.push(h('p', { class: `aiser-sb-notice ${ok ? 'aiser-sb-ok' : 'aiser-sb-error'}`, role: 'status' }, message));
      }
      if (this.model.answer) {
        sections.push(this.answer());
      }
      sections.push(this.connections(), this.schemaSection(), this.semantic(), this.history());
    }
    // Redrawing replaces the nodes: keep the keyboard focus (and the caret) where it was.
    const focused = document.activeElement as HTMLInputElement | null;
    const key = focused && this.node.contains(focused) ? focused.dataset.key : undefined;
    const caret = focused === this._search ? [this._search.selectionStart, this._search.selectionEnd] : null;
    this._body.replaceChildren(...sections);
    if (key) {
      this._body.querySelector<HTMLElement>(`[data-key="${CSS.escape(key)}"]`)?.focus();
    }
    if (caret && caret[0] !== null) {
      this._search.setSelectionRange(caret[0], caret[1]);
    }
  }

  private section(key: string, title: string, count: number, ...content: Child[]): HTMLElement {
    const head = [h('span', { class: 'aiser-sb-section-title' }, title), h('span', { class: 'aiser-sb-count' }, String(count))];
    return this.collapsible(key, 'aiser-sb-section', head, content);
  }

  /** A <details> (Enter or a click on its summary folds it) that stays as the user left it. */
  private collapsible(key: string, cls: string, head: Child[], content: Child[]): HTMLElement {
    const details = h('details', { class: cls, 'data-section': key }) as HTMLDetailsElement;
    details.open = !this._closed.has(key);
    details.addEventListener('toggle', () => {
      if (details.open) {
        this._closed.delete(key);
      } else {
        this._closed.add(key);
      }
    });
    details.append(h('summary', { 'data-key': `summary:${key}` }, ...head), ...content);
    return details;
  }

  /** The last answer: its status and text; the questions to ask instead as buttons that
   * insert and run them (as the Ask box does); thumbs while it can still be judged. */
  private answer(): HTMLElement {
    const answer = this.model.answer!;
    const card = h(
      'section',
      { class: 'aiser-sb-answer', 'data-status': answer.status, 'aria-label': `Last answer: ${answer.question}` },
      h('p', { class: 'aiser-sb-answer-status', role: 'status' }, statusLabel(answer)),
      h('p', { class: 'aiser-sb-answer-text', title: answer.question }, answer.text)
    );
    if (answer.suggestions.length) {
      const asks = answer.suggestions.map(s => h('li', {}, button(s, `Ask: ${s}`, () => this._actions.insertCell(askCell(s), true), 'aiser-sb-suggestion')));
      card.append(h('ul', { class: 'aiser-sb-suggestions', 'aria-label': 'Questions the data can answer' }, ...asks));
    }
    if (canRate(answer)) {
      card.append(
        h(
          'span',
          { class: 'aiser-sb-thumbs' },
          button('👍 Right', 'Right: reuse this answer next time', () => this._actions.feedback(true)),
          button('👎 Wrong', 'Wrong: never reuse this answer', () => this._actions.feedback(false))
        )
      );
    }
    return card;
  }

  private connections(): HTMLElement {
    const rows = this.model.connections.map(c => {
      const verdict = this.model.verdicts.get(c.name);
      const failed = this.model.schema.find(s => s.connection === c.name)?.error;
      const status = verdict ?? (failed ? { ok: false, message: failed } : { ok: true, message: c.current ? 'connected · current' : 'connected' });
      return h(
        'li',
        { class: 'aiser-sb-connection', 'data-name': c.name, title: c.url },
        h('span', { class: 'aiser-sb-name' }, c.name),
        h('span', { class: 'aiser-sb-kind' }, c.kind),
        h('span', { class: `aiser-sb-status ${status.ok ? 'aiser-sb-ok' : 'aiser-sb-error'}` }, status.message),
        h(
          'span',
          { class: 'aiser-sb-row-actions' },
          button('Test', `Test the connection ${c.name}`, () => this._actions.test(c.name)),
          button('Remove', `Remove the connection ${c.name}`, () => this._actions.remove(c.name))
        )
      );
    });
    const add = button('+ Add', 'Add a connection (inserts and runs %aiser panel)', () => this._actions.insertCell('%aiser panel', true));
    const list = rows.length ? h('ul', { class: 'aiser-sb-list' }, ...rows) : h('p', { class: 'aiser-sb-hint' }, 'No connections yet.');
    return this.section('connections', 'Connections', rows.length, add, list);
  }

  private schemaSection(): HTMLElement {
    const searching = this.model.search.trim() !== '';
    const entries = this.model.filteredSchema();
    const tree = h('ul', { class: 'aiser-sb-tree', role: 'tree', 'aria-label': 'Tables and columns' });
    let tables = 0;
    for (const entry of entries) {
      const children = entry.tables.map(table => {
        tables++;
        const key = `${entry.connection}/${table.schema}/${table.name}`;
        const open = searching ? table.columns.length > 0 : this._expanded.has(key);
        const label = tableLabel(table);
        const toggle = button(open ? '▾' : '▸', `${open ? 'Hide' : 'Show'} the columns of ${label}`, () => {
          if (this._expanded.has(key)) {
            this._expanded.delete(key);
          } else {
            this._expanded.add(key);
          }
          this.render();
        }, 'aiser-sb-toggle');
        toggle.setAttribute('aria-expanded', String(open));
        toggle.dataset.key = `toggle:${key}`;
        const row = actionable(
          h('span', { class: 'aiser-sb-item aiser-sb-table', 'data-table': label, title: `Double-click or Enter: a %%sql cell reading ${label}` }, label, h('span', { class: 'aiser-sb-detail' }, `${table.columns.length}`)),
          () => this._actions.insertCell(tableCell(entry.connection, table), false)
        );
        const item = h('li', { role: 'treeitem', 'aria-expanded': String(open) }, toggle, row);
        if (open) {
          item.append(
            h('ul', { role: 'group' }, ...table.columns.map(c => h('li', { class: 'aiser-sb-column', role: 'treeitem' }, c.name, h('span', { class: 'aiser-sb-detail' }, c.type))))
          );
        }
        return item;
      });
      const head = h('span', { class: 'aiser-sb-group' }, entry.connection);
      const node = h('li', { role: 'treeitem', 'aria-expanded': 'true' }, head);
      if (entry.error) {
        node.append(h('p', { class: 'aiser-sb-error' }, entry.error));
      }
      node.append(h('ul', { role: 'group' }, ...children));
      tree.append(node);
    }
    const empty = entries.length ? '' : h('p', { class: 'aiser-sb-hint' }, searching ? 'Nothing matches.' : 'No tables yet.');
    return this.section('schema', 'Schema', tables, this._search, tree, empty);
  }

  private semantic(): HTMLElement {
    const model = this.model.model;
    if (!model) {
      return this.section('model', 'Semantic model', 0, h('p', { class: 'aiser-sb-hint' }, 'No model loaded: %aiser model load PATH'));
    }
    const cubes = model.cubes.map(cube => {
      const groups = (['measure', 'dimension', 'segment'] as MemberKind[])
        .filter(kind => cube[`${kind}s`].length)
        .map(kind =>
          h(
            'li',
            { role: 'treeitem', 'aria-expanded': 'true' },
            h('span', { class: 'aiser-sb-group' }, `${kind}s`),
            h('ul', { role: 'group' }, ...cube[`${kind}s`].map(member => this.member(cube, member, kind)))
          )
        );
      const head = [h('span', { class: 'aiser-sb-group', title: cube.description ?? cube.name }, cube.title), h('span', { class: 'aiser-sb-detail' }, cube.name)];
      return h('li', { role: 'treeitem' }, this.collapsible(`cube:${cube.name}`, 'aiser-sb-cube', head, [h('ul', { role: 'group' }, ...groups)]));
    });
    return this.section('model', 'Semantic model', model.cubes.length, h('ul', { class: 'aiser-sb-tree', role: 'tree', 'aria-label': 'Semantic model' }, ...cubes));
  }

  private member(cube: ICube, member: IMember, kind: MemberKind): HTMLElement {
    const description = member.description ? `${member.description}\n` : '';
    const item = h(
      'li',
      { class: 'aiser-sb-item aiser-sb-member', role: 'treeitem', 'data-member': member.name, title: `${description}${member.name} · double-click or Enter: a %%query cell` },
      member.shortTitle,
      h('span', { class: 'aiser-sb-detail' }, member.aggType ?? member.type ?? kind)
    );
    if (member.description) {
      item.append(h('span', { class: 'aiser-sb-description' }, member.description));
    }
    return actionable(item, () => this._actions.insertCell(memberCell(cube, member, kind), false));
  }

  private history(): HTMLElement {
    const names = this.model.connections.map(c => c.name);
    const rows = this.model.newestFirst().map(entry =>
      actionable(
        h(
          'li',
          { class: `aiser-sb-item aiser-sb-run${entry.error ? ' aiser-sb-failed' : ''}`, title: `${entry.error ?? entry.sql}\nDouble-click or Enter: this ${entry.kind === 'ask' ? 'question' : 'query'} in a new cell` },
          h('span', { class: 'aiser-sb-run-head' }, h('span', { class: 'aiser-sb-kind' }, `%%${entry.kind}`), h('time', { datetime: entry.at }, formatTime(entry.at)), h('span', {}, entry.engine), h('span', {}, entry.error ? 'failed' : formatRows(entry.rows)), h('span', {}, formatDuration(entry.elapsed))),
          h('code', { class: 'aiser-sb-run-sql' }, entry.sql)
        ),
        () => this._actions.insertCell(historyCell(entry, names), false)
      )
    );
    const list = rows.length ? h('ol', { class: 'aiser-sb-list aiser-sb-history' }, ...rows) : h('p', { class: 'aiser-sb-hint' }, 'Nothing run yet.');
    return this.section('history', 'History', rows.length, list);
  }
}
