/**
 * The link between the sidebar and the active notebook's kernel: one comm (target
 * "aiser_sidebar"), opened by the panel when it meets a kernel, or by the kernel when
 * `%load_ext aiser_jupyter` runs there. Nothing is polled: the kernel pushes changes.
 */
import { ISessionContext } from '@jupyterlab/apputils';
import { NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { Kernel } from '@jupyterlab/services';

import { KernelMessage, SidebarModel } from './model';

export const TARGET = 'aiser_sidebar';

export class KernelLink {
  private _panel: NotebookPanel | null = null;
  private _kernel: Kernel.IKernelConnection | null = null;
  private _comm: Kernel.IComm | null = null;
  private _requests = 0;
  private _restarted = false;

  constructor(private _model: SidebarModel) {}

  /** Follow `panel`'s kernel (null: no notebook is open). */
  follow(panel: NotebookPanel | null): void {
    if (panel === this._panel) {
      return;
    }
    this._panel?.sessionContext.kernelChanged.disconnect(this._onKernel, this);
    this._panel?.sessionContext.statusChanged.disconnect(this._onStatus, this);
    this._panel = panel;
    if (!panel) {
      this._bind(null);
      this._model.setStatus('no-notebook');
      return;
    }
    panel.sessionContext.kernelChanged.connect(this._onKernel, this);
    panel.sessionContext.statusChanged.connect(this._onStatus, this);
    this._model.setStatus('connecting');
    void panel.sessionContext.ready.then(() => {
      if (this._panel === panel) {
        this._bind(panel.sessionContext.session?.kernel ?? null);
      }
    });
  }

  /** Send a request to the kernel (test, remove, refresh, feedback). */
  request(action: string, data: Record<string, string | boolean> = {}): void {
    this._comm?.send({ action, id: ++this._requests, ...data });
  }

  /** Add a cell below the active one; `run` runs it at once. */
  async insertCell(text: string, run: boolean): Promise<void> {
    const panel = this._panel;
    if (!panel) {
      return;
    }
    const notebook = panel.content;
    NotebookActions.insertBelow(notebook);
    notebook.activeCell?.model.sharedModel.setSource(text);
    if (run) {
      await NotebookActions.run(notebook, panel.sessionContext);
    } else {
      notebook.activeCell?.node.scrollIntoView({ block: 'nearest' });
    }
  }

  private _onKernel(context: ISessionContext): void {
    this._bind(context.session?.kernel ?? null);
  }

  private _onStatus(context: ISessionContext, status: Kernel.Status): void {
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
      // The kernel's state (and the extension) is gone; a fresh probe follows the restart.
      this._dropComm();
      this._restarted = true;
      this._model.setStatus('not-loaded');
    } else if (status === 'idle' && this._restarted) {
      this._restarted = false;
      this._probe();
    }
  }

  private _bind(kernel: Kernel.IKernelConnection | null): void {
    if (kernel && kernel === this._kernel && this._comm) {
      return;
    }
    this._dropComm();
    this._kernel = kernel;
    if (!kernel) {
      this._model.setStatus(this._panel ? 'not-loaded' : 'no-notebook');
      return;
    }
    kernel.registerCommTarget(TARGET, comm => {
      if (kernel !== this._kernel) {
        comm.close();
        return;
      }
      this._adopt(comm);
      this.request('refresh'); // tells the kernel a sidebar listens, and gets the state
    });
    this._probe();
  }

  /** Open a comm: the kernel answers with its state, or closes it when the extension is not
   * loaded there (then the panel says so, and waits for the kernel to open one). */
  private _probe(): void {
    const kernel = this._kernel;
    if (!kernel || kernel.isDisposed) {
      return;
    }
    const comm = kernel.createComm(TARGET);
    this._adopt(comm);
    comm.open({});
  }

  private _adopt(comm: Kernel.IComm): void {
    if (this._comm && this._comm !== comm) {
      const old = this._comm;
      this._comm = null;
      if (!old.isDisposed) {
        old.close();
      }
    }
    this._comm = comm;
    comm.onMsg = msg => this._onMessage(msg.content.data as unknown as KernelMessage);
    comm.onClose = () => {
      if (this._comm === comm) {
        this._comm = null;
        this._model.setStatus('not-loaded');
      }
    };
  }

  private _dropComm(): void {
    const comm = this._comm;
    this._comm = null;
    if (comm && !comm.isDisposed) {
      try {
        comm.close();
      } catch {
        // the kernel is already gone
      }
    }
  }

  private _onMessage(message: KernelMessage): void {
    if (message.type === 'insert_cell') {
      this._insertFromKernel(message.text, message.cell_id);
    } else {
      this._model.apply(message);
    }
  }

  /** A cell from the kernel (%%ask's SQL): below the cell that asked for it, else below the
   * active one; the active cell stays where it is, so "run all" goes on undisturbed. */
  private _insertFromKernel(text: string, cellId: string | null): void {
    const notebook = this._panel?.content;
    const cells = notebook?.model?.sharedModel;
    if (!notebook || !cells) {
      return;
    }
    let index = cellId ? cells.cells.findIndex(c => c.id === cellId) : -1;
    if (index < 0) {
      index = notebook.activeCellIndex;
    }
    cells.insertCell(index + 1, { cell_type: 'code', source: text });
  }
}
