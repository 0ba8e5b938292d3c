"""The Flow tool: arrows by drag, anchors by click, fluid painting, move and delete, undo, live playback,
loop length and speed, export and projects."""

import numpy as np
from PySide6.QtGui import QMouseEvent

from app.project import load_project
from app.ui.flow_tool import flow_overlay, move_handle, nearest_handle
from ui_helpers import image_point_to_widget, mean_difference, send_mouse, whole_photo_brush, write_photo

PRESS, MOVE, RELEASE = (QMouseEvent.Type.MouseButtonPress, QMouseEvent.Type.MouseMove,
                        QMouseEvent.Type.MouseButtonRelease)


def open_photo(studio, tmp_path):
    studio.open_path(write_photo(tmp_path / "river.png"))
    return studio.document


def drag(viewport, start, end, button=None, steps=4):
    from PySide6.QtCore import Qt

    button = button or Qt.LeftButton
    send_mouse(viewport, PRESS, image_point_to_widget(viewport, *start), button)
    for step in range(1, steps + 1):
        x = start[0] + (end[0] - start[0]) * step / steps
        y = start[1] + (end[1] - start[1]) * step / steps
        send_mouse(viewport, MOVE, image_point_to_widget(viewport, x, y), button)
    send_mouse(viewport, RELEASE, image_point_to_widget(viewport, *end), button)


def click(viewport, point, button=None):
    drag(viewport, point, point, button, steps=0)


def draw_mode(studio, mode):
    studio.flow_panel.set_drawing(True)
    studio.flow_panel.set_mode(mode)
    assert studio.viewport.tool == "flow"


def test_dragging_draws_an_arrow_whose_length_is_its_speed_and_the_scene_flows(studio, tmp_path):
    document = open_photo(studio, tmp_path)
    draw_mode(studio, "arrow")
    drag(studio.viewport, (20, 40), (80, 40))
    still = studio.viewport.render_now().copy()  # frame 0 of the flow (the photo), arrows drawn over it
    hints = document.flow_hints
    assert hints is not None and len(hints.arrows) == 1
    x, y, dx, dy = hints.arrows[0]
    assert abs(x - 20) < 1.5 and abs(y - 40) < 1.5 and abs(dx - 60) < 2 and abs(dy) < 1.5
    field = document.flow_field()
    assert field.velocity[0, 40, 20] == np.float32(dx / 30.0)  # pixels per second -> per frame
    assert studio.viewport.flow_player is not None
    studio.viewport.advance(0.5)
    moving = studio.viewport.render_now()
    assert mean_difference(moving, still) > 1.0  # the viewport plays the flow at once
    assert studio.undo_stack.undoText() == "Arrow"


def test_a_click_drops_an_anchor_and_a_short_drag_is_no_arrow(studio, tmp_path):
    document = open_photo(studio, tmp_path)
    draw_mode(studio, "anchor")
    click(studio.viewport, (50, 30))
    assert len(document.flow_hints.anchors) == 1
    draw_mode(studio, "arrow")
    click(studio.viewport, (100, 60))
    assert len(document.flow_hints.arrows) == 0
    assert "direction" in studio.statusBar().currentMessage()


def test_handles_move_and_delete_and_every_step_undoes(studio, tmp_path):
    document = open_photo(studio, tmp_path)
    draw_mode(studio, "arrow")
    drag(studio.viewport, (20, 40), (60, 40))
    drawn = document.flow_hints
    drag(studio.viewport, (60, 40), (60, 70))  # grab the tip: the arrow now points down-right
    moved = document.flow_hints
    assert moved is not drawn and moved.arrows[0][3] > 25
    draw_mode(studio, "anchor")
    click(studio.viewport, (120, 20))
    click(studio.viewport, (120, 20), button=__import__("PySide6.QtCore").QtCore.Qt.RightButton)
    assert len(document.flow_hints.anchors) == 0
    assert [studio.undo_stack.text(i) for i in range(studio.undo_stack.count())] == [
        "Arrow", "Move Arrow", "Anchor", "Delete Anchor"]
    for _ in range(3):
        studio.undo_stack.undo()
    assert document.flow_hints is drawn
    studio.undo_stack.undo()
    assert document.flow_hints is None and studio.viewport.flow_player is None
    studio.undo_stack.redo()
    assert document.flow_hints is drawn and studio.viewport.flow_player is not None


def test_painting_the_fluid_confines_the_flow(studio, tmp_path):
    document = open_photo(studio, tmp_path)
    draw_mode(studio, "arrow")
    drag(studio.viewport, (20, 50), (70, 50))
    draw_mode(studio, "mask")
    studio.flow_panel.radius_spin.setValue(12)
    drag(studio.viewport, (5, 50), (150, 50), steps=12)
    hints = document.flow_hints
    assert hints.mask is not None and hints.mask[50, 80] > 0.5 and hints.mask[5, 80] == 0
    velocity = document.flow_field().velocity
    assert np.abs(velocity[:, :20]).max() == 0 and np.abs(velocity[:, 50, 100]).max() > 0.1
    draw_mode(studio, "erase")
    drag(studio.viewport, (5, 50), (40, 50), steps=6)
    assert document.flow_field() is None  # the arrow now starts outside the fluid
    assert "outside the fluid mask" in studio.statusBar().currentMessage()
    assert studio.viewport.flow_player is None


def test_loop_length_and_speed_are_undoable_edits(studio, tmp_path):
    document = open_photo(studio, tmp_path)
    draw_mode(studio, "arrow")
    drag(studio.viewport, (20, 40), (80, 40))
    studio.flow_panel.loop_spin.setValue(48)
    studio.flow_panel.speed_spin.setValue(2.0)
    assert document.flow_hints.num_frames == 48 and document.flow_hints.speed == 2.0
    assert studio.viewport.flow_player.period == 48
    assert document.flow_field().velocity[0, 40, 20] == np.float32(2.0 * 60 / 30)
    studio.undo_stack.undo()
    studio.undo_stack.undo()
    assert document.flow_hints.num_frames == 90 and document.flow_hints.speed == 1.0
    assert studio.flow_panel.loop_spin.value() == 90


def test_a_swaying_scene_flows_on_the_sways_loop(studio, tmp_path):
    document = open_photo(studio, tmp_path)
    height, width = document.preview_image.shape[:2]
    studio.replace_motion(whole_photo_brush(height, width))
    draw_mode(studio, "arrow")
    drag(studio.viewport, (20, 40), (80, 40))
    assert studio.viewport.flow_follows_sway and studio.viewport.flow_player.period == document.motion.num_frames
    assert not studio.flow_panel.loop_spin.isEnabled()


def test_the_overlay_draws_arrows_anchors_and_fluid():
    from app.core.flow_field import FlowHints

    mask = np.zeros((40, 60), np.float32)
    mask[20:] = 1.0
    hints = FlowHints(60, 40, arrows=[[10, 30, 30, 0]], anchors=[[50, 10]], mask=mask)
    rgba = flow_overlay(hints, 40, 60)
    assert rgba.shape == (40, 60, 4)
    assert rgba[30, 25, 3] == 255  # on the arrow's shaft
    assert 0 < rgba[35, 5, 3] < 255  # tinted fluid
    assert rgba[5, 5, 3] == 0  # dry, nothing drawn
    assert tuple(rgba[10, 50, :3]) != (0, 0, 0)  # the anchor's cross
    assert nearest_handle(hints, 41, 31) == ("tip", 0)
    assert nearest_handle(hints, 49, 11) == ("anchor", 0)
    assert nearest_handle(hints, 30, 5) is None
    moved = move_handle(hints, ("tail", 0), 12, 32)
    assert list(moved.arrows[0]) == [12, 32, 30, 0]


def test_projects_keep_the_flow_layer_exactly(studio, tmp_path):
    document = open_photo(studio, tmp_path)
    draw_mode(studio, "arrow")
    drag(studio.viewport, (20, 40), (80, 45))
    draw_mode(studio, "mask")
    drag(studio.viewport, (5, 45), (150, 45), steps=10)
    studio.flow_panel.speed_spin.setValue(1.5)
    hints = document.flow_hints
    path = str(tmp_path / "river.aeolus")
    assert studio.projects.write_project(path)
    assert load_project(path).flow.same_as(hints)
    studio.open_path(write_photo(tmp_path / "other.png"))
    assert document.flow_hints is None
    studio.open_project(path)
    assert document.flow_hints.same_as(hints)
    assert studio.viewport.flow_player is not None


def test_export_writes_the_flow_loop(studio, tmp_path, qtbot):
    from app.ui.export_dialog import ExportRequest, export_job

    document = open_photo(studio, tmp_path)
    draw_mode(studio, "arrow")
    drag(studio.viewport, (20, 40), (80, 40))
    studio.flow_panel.loop_spin.setValue(12)

    class Report:
        progress = staticmethod(lambda done, total: None)
        cancelled = staticmethod(lambda: False)

    for renderer in ("splat", "gl"):
        out = str(tmp_path / f"loop-{renderer}")
        try:
            export_job(document.image, None, ExportRequest(out, format="png", renderer=renderer, num_loops=2),
                       Report(), flow=document.flow_field())
        except ValueError as error:  # no headless GL here
            assert renderer == "gl" and "OpenGL" in str(error)
            continue
        import os

        from PIL import Image

        names = sorted(os.listdir(out))
        assert len(names) == 24
        frames = [np.asarray(Image.open(os.path.join(out, name)).convert("RGB")) for name in names[:12]]
        assert mean_difference(frames[0], frames[6]) > 1.0  # the water moves in the exported loop
        steps = [mean_difference(a, b) for a, b in zip(frames, frames[1:])]
        assert mean_difference(frames[-1], frames[0]) <= 1.05 * max(steps[0], steps[-1])  # and it closes


def test_the_water_example_opens_flowing_from_the_examples_menu(studio):
    action = next(action for action in studio.examples_menu.actions() if action.text() == "Fountain (flow)")
    action.trigger()
    document = studio.document
    assert document.name == "fountain" and document.flow_hints is not None
    assert len(document.flow_hints.arrows) == 8 and document.flow_hints.mask is not None
    assert (document.flow_hints.height, document.flow_hints.width) == document.preview_image.shape[:2]
    assert studio.viewport.flow_player is not None and not studio.viewport.flow_follows_sway
    assert studio.undo_stack.count() == 0
