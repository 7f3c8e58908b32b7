/**
 * aiser-jupyter's JupyterLab sidebar: what the active notebook's kernel is connected to,
 * its tables, its semantic model and what it ran, with actions that write cells.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { showDialog, Dialog } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { KernelLink } from './kernel';
import { SidebarModel } from './model';
import { SidebarPanel } from './panel';

const ICON = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
<g class="jp-icon3" fill="#616161"><ellipse cx="12" cy="5" rx="8" ry="3"/>
<path d="M4 7v4c0 1.7 3.6 3 8 3s8-1.3 8-3V7c0 1.7-3.6 3-8 3S4 8.7 4 7zm0 6v4c0 1.7 3.6 3 8 3s8-1.3 8-3v-4c0 1.7-3.6 3-8 3s-8-1.3-8-3z"/></g></svg>`;

const icon = new LabIcon({ name: 'aiser-jupyter:sidebar', svgstr: ICON });

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'aiser-jupyter:sidebar',
  description: 'Connections, schema, semantic model and history of the notebook kernel.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILayoutRestorer],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker, restorer: ILayoutRestorer | null) => {
    const model = new SidebarModel();
    const link = new KernelLink(model);
    const panel = new SidebarPanel(model, {
      insertCell: (text, run) => void link.insertCell(text, run),
      test: name => link.request('test', { name }),
      feedback: good => link.request('feedback', { good }),
      remove: async name => {
        const answer = await showDialog({
          title: 'Remove connection',
          body: `Close and forget the connection ${name} in this kernel?`,
          buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Remove' })]
        });
        if (answer.button.accept) {
          link.request('remove', { name });
        }
      }
    });
    panel.title.icon = icon;
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, 'aiser-sidebar');
    app.commands.addCommand('aiser-jupyter:show-sidebar', {
      label: 'Show the aiser sidebar',
      execute: () => app.shell.activateById(panel.id)
    });
    tracker.currentChanged.connect((_, current) => link.follow(current));
    link.follow(tracker.currentWidget);
  }
};

export default plugin;
