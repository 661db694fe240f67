"""The experiment's chart (PNG): references per translation and time per
mode; with the TLB model, its figures in place of the softmmu TLB's.

SPDX-License-Identifier: GPL-2.0-or-later
"""

from ..model import MODE_BY_NAME
from .output import stat_text


def _bars(ax, values, labels, width, offset, **kw):
    """Bars of VALUES at offset OFFSET from each of the x positions."""
    xs = [i + offset for i in range(len(values))]
    bars = ax.bar(xs, values, width, **kw)
    ax.bar_label(bars, labels=labels, fontsize=7.5, padding=2)
    return bars


def _time_label(seconds, ratio):
    """A bar label: the time, and the ratio if it is known."""
    return f'{seconds:.3f} s' + (f'\n{ratio:.2f}x' if ratio is not None
                                 else '')


def _model_refs(ax, wl, names):
    """References per modelled miss, and the guest and VMM segments'
    shares of the misses, per mode."""
    modes = wl['modes']
    refs = [r.model.refs_per_miss or 0.0 for r in modes]
    _bars(ax, refs, [f'{v:.2f}' for v in refs], 0.6, 0,
          label='walk references per miss (after the walk caches)',
          color='#4c72b0')
    top = max(refs) * 1.4 + 0.5
    for i, (r, v) in enumerate(zip(modes, refs)):
        segs = [f'{k} {100 * s:.0f}%' for k, s in
                (('g-seg', r.model.guest_segment_share),
                 ('v-seg', r.model.vmm_segment_share)) if s]
        if segs:
            ax.text(i, v + top * 0.07, '\n'.join(segs), ha='center',
                    va='bottom', fontsize=7.5, color='#333333')
    ax.set_xticks(list(range(len(modes))), names, fontsize=9)
    ax.set_ylabel('memory references per modelled miss')
    ax.set_title(f"{wl['kind']}, {wl['size_mb']} MiB: TLB model, "
                 f"references per miss\n(an L1 miss the L2 did not hold; "
                 f"text: the segments' shares of the misses)")
    ax.set_ylim(0, top)
    ax.legend(fontsize=8, loc='upper left')


def _model_cycles(ax, wl, names):
    """Modelled translation cycles per operation, per mode."""
    modes = wl['modes']
    cycles = [r.model.cycles_per_op for r in modes]
    native = next((r.model.cycles_per_op for r in modes
                   if r.mode == 'base-native'), None)
    _bars(ax, cycles, [f'{v:.1f}' + (f'\n{v / native:.2f}x' if native
                                     else '') for v in cycles], 0.6, 0,
          color='#8172b2')
    ax.set_xticks(list(range(len(modes))), names, fontsize=8)
    ax.set_ylabel(f"modelled translation cycles per {wl['unit']}")
    ax.set_title('TLB model: cycles per ' + wl['unit'] +
                 '\n(label: x base native)')
    ax.set_ylim(0, max(cycles) * 1.3 + 1)


def _fill_refs(ax, wl, names, w):
    """Architectural and performed references per softmmu TLB fill."""
    modes = wl['modes']
    arch = [r.arch_per_fill for r in modes]
    perf = [r.performed_per_fill for r in modes]
    _bars(ax, arch, [f'{v:.1f}' for v in arch], w, -w / 2,
          label='architectural (arch-refs)', color='#4c72b0')
    _bars(ax, perf, [f'{v:.1f}' for v in perf], w, w / 2,
          label='performed by QEMU (guest+nested)', color='#dd8452')
    ax.set_xticks(list(range(len(modes))), names, fontsize=9)
    ax.set_ylabel('page-table references per TLB fill')
    ax.set_title(f"{wl['kind']}, {wl['size_mb']} MiB: references per "
                 f"fill")
    ax.set_ylim(0, max(arch + perf) * 1.18 + 1)
    ax.legend(fontsize=8, loc='upper left')


def draw_chart(res, path):
    """A PNG of references per translation, and wall (and vCPU) time, per
    mode: with the TLB model's figures when the results have them (and
    its cycles per operation), else with the softmmu TLB's fills; and
    the fork against upstream where the results compare them."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    wls = res['workloads']
    tlb = res['config']['tlb_size']
    model = all(r.model for wl in wls for r in wl['modes'])
    overhead = any(wl['overhead'] for wl in wls)
    widths = [3, 3] + [2] * model + [1.5] * overhead
    fig, axes = plt.subplots(len(wls), len(widths),
                             figsize=(2.3 * sum(widths), 5.2 * len(wls)),
                             squeeze=False,
                             gridspec_kw={'width_ratios': widths})
    w = 0.38
    for row, wl in zip(axes, wls):
        modes = wl['modes']
        names = [r.label.replace(' ', '\n', 1) for r in modes]
        x = list(range(len(modes)))
        if model:
            _model_refs(row[0], wl, names)
            _model_cycles(row[2], wl, names)
        else:
            _fill_refs(row[0], wl, names, w)

        ax = row[1]
        walls = [r.wall_time_s for r in modes]
        _bars(ax, walls, [_time_label(v, r.wall_vs_base_native)
                          for v, r in zip(walls, modes)], 0.6, 0,
              label='wall', color='#55a868')
        if modes[0].vcpu_time_s is not None:
            ax.scatter(x, [r.vcpu_time_s for r in modes], marker='_',
                       s=900, linewidths=2, color='#333333', zorder=3,
                       label='vCPU thread CPU time')
        ax.set_xticks(x, names, fontsize=9)
        ax.set_ylabel('time of the workload loop (s)')
        ax.set_title(f"time per mode ({stat_text(res['config'])}; "
                     f"tlb-size={tlb}); label: x base native")
        ax.set_ylim(0, max(walls + [r.vcpu_time_s or 0
                                    for r in modes]) * 1.3)
        ax.legend(fontsize=8, loc='upper left', markerscale=0.3)

        if not overhead:
            continue
        ax = row[-1]
        if not wl['overhead']:
            ax.axis('off')
            continue
        over = wl['overhead']
        names = [MODE_BY_NAME[o['mode']].label.replace(' ', '\n')
                 for o in over]
        up = [o['upstream']['wall_time_s'] for o in over]
        fork = [o['fork_off']['wall_time_s'] for o in over]
        _bars(ax, up, [f'{v:.3f} s' for v in up], w, -w / 2,
              label='upstream', color='#999999')
        _bars(ax, fork, [_time_label(v, o['wall_ratio'])
                         for v, o in zip(fork, over)], w, w / 2,
              label='fork, dseg off', color='#c44e52')
        ax.set_xticks(list(range(len(over))), names, fontsize=9)
        ax.set_ylabel('wall time of the workload loop (s)')
        ax.set_title('fork vs upstream, dynamic TLB\n(label: fork / '
                     'upstream)')
        ax.set_ylim(0, max(fork + up) * 1.35)
        ax.legend(fontsize=8, loc='upper left')
    model_cfg = res['config'].get('tlb_model')
    fig.suptitle(f"qemu-dseg: the workloads under each translation mode "
                 f"(4 KiB pages). {res['config']['tlb_geometry']}" +
                 (f"\nTLB model: {model_cfg['preset']} preset, "
                  f"{model_cfg['l2_cycles']} cycles per L1 miss + "
                  f"{model_cfg['ref_cycles']} per reference"
                  if model and model_cfg else ''), fontsize=11)
    # Room at the top for the title, whatever the number of rows.
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.25 / fig.get_figheight()))
    fig.savefig(path, dpi=100)
    plt.close(fig)

