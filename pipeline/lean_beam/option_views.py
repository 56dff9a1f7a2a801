"""A view of a pipeline's options is made once, not at every ask.

``PipelineOptions.view_as(cls)`` builds an argument parser holding every
option of ``cls`` and parses the pipeline's flags with it. Beam asks for
``view_as(TypeOptions)`` at every ``apply`` and again for every result's
type, and its validator asks for a view of each options class: 2,098 views
in one small local run (200 images), about 2 s of its CPU in a profile.

A view holds nothing of its own: it reads and writes the ``_all_options``
dict that every view of one set of options shares, and its flags. So a view
made once answers as a new one would for as long as that dict is the same
object, the flags are equal and the dict still holds every option of the
view (a new view would fill in a missing one). The last views made are
kept per (options class, dict), with that dict and a copy of the flags to
check against; anything else gets a new view, as Beam makes it.
Options read from the command line (no flags given) are not kept: those
depend on ``sys.argv``.
"""

from __future__ import annotations

import threading

# How many views are kept: a run has a few sets of options at a time (one per Beam step).
KEPT_VIEWS = 64


def remembering(view_as):
    # (class, id of the shared dict) -> (the dict, the flags, the view's option names, the view)
    views = {}
    adding = threading.Lock()  # Beam builds and runs bundles on several threads

    def remembered_view_as(self, cls):
        options, flags = self._all_options, self._flags
        if flags is None:
            return view_as(self, cls)
        key = (cls, id(options))
        kept = views.get(key)
        # The dict is held by the entry, so its id cannot be reused while the entry lives.
        if kept is not None and kept[0] is options and kept[1] == list(flags) and all(n in options for n in kept[2]):
            return kept[3]
        view = view_as(self, cls)
        with adding:
            if len(views) >= KEPT_VIEWS:
                views.pop(next(iter(views)))  # the oldest
            views[key] = (options, list(flags), view._visible_option_list(), view)
        return view

    remembered_view_as.views = views  # for the tests
    remembered_view_as.__wrapped__ = view_as
    return remembered_view_as
