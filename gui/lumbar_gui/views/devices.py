"""Devices: scan, assign placements, connect/disconnect, battery, RSSI, achieved rate and loss live."""
from __future__ import annotations

from typing import Any, Callable

from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from lumbar_gui.engine import Engine
from lumbar_gui.sources import PLACEMENTS, DemoPatient, DeviceEntry, ble_reader_available, scan_devices
from lumbar_gui.widgets import COLORS, card

NONE = "— not worn —"
COLUMNS = ["Sensor", "Family", "Address", "Battery", "Signal", "Placement", "Status", "Rate", "Loss"]


class DevicesView(QWidget):
    title = "Devices"

    def __init__(self, engine: Engine, *, demo_speed: Callable[[], float] = lambda: 1.0, rate_hz: float = 100.0,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page")
        self.engine = engine
        self.demo_speed = demo_speed
        self.rate_hz = rate_hz
        self.entries: list[DeviceEntry] = []
        self._combos: list[QComboBox] = []
        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 12, 16, 12)
        head = QHBoxLayout()
        t = QLabel("Sensors")
        t.setObjectName("title")
        head.addWidget(t)
        self.sub = QLabel("")
        self.sub.setObjectName("subtitle")
        head.addWidget(self.sub, 1)
        outer.addLayout(head)
        c, lay = card("Sensors in range")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        lay.addWidget(self.table, 1)
        btns = QHBoxLayout()
        self.scan_btn = QPushButton("Scan")
        self.scan_btn.clicked.connect(self.scan)
        self.rate = QComboBox()
        self.rate.addItems(["100 Hz", "200 Hz"])
        self.rate.setCurrentIndex(1 if rate_hz >= 200 else 0)
        self.connect_btn = QPushButton("Connect assigned sensors")
        self.connect_btn.setObjectName("primary")
        self.connect_btn.clicked.connect(self.connect_assigned)
        self.disconnect_btn = QPushButton("Disconnect all")
        self.disconnect_btn.clicked.connect(self.engine.disconnect_source)
        self.drop_btn = QPushButton("Simulate link loss (3 s)")
        self.drop_btn.setToolTip("Demo sensors only: the selected sensor drops out for 3 s")
        self.drop_btn.clicked.connect(self.drop_selected)
        btns.addWidget(self.scan_btn)
        btns.addWidget(QLabel("Output rate"))
        btns.addWidget(self.rate)
        btns.addStretch(1)
        btns.addWidget(self.drop_btn)
        btns.addWidget(self.disconnect_btn)
        btns.addWidget(self.connect_btn)
        lay.addLayout(btns)
        outer.addWidget(c, 1)
        help_card, hl = card("How to place the sensors")
        tip = QLabel("<b>L1</b>: on the spine at the thoraco-lumbar junction (T12/L1), the long side vertical. "
                     "<b>S1</b>: on the sacrum, centred between the dimples of Venus. <b>Thighs</b>: lateral, mid-thigh. "
                     "Assign each sensor's placement, then connect. A sensor that drops out is shown here; the "
                     "recording continues and the gap is flagged in the file.")
        tip.setWordWrap(True)
        hl.addWidget(tip)
        outer.addWidget(help_card)
        self.scan()

    def scan(self) -> None:
        self.entries = scan_devices(include_demo=True)
        self.sub.setText("Bluetooth reader available" if ble_reader_available()
                         else "No Bluetooth reader installed — the demo sensors (emulated patient) are listed")
        self.table.setRowCount(len(self.entries))
        self._combos = []
        for r, e in enumerate(self.entries):
            name = f"{e.name}  (demo)" if e.demo else e.name
            vals = [name, e.family, e.address, _pct(e.battery_pct), _dbm(e.rssi_dbm), None, "available", "–", "–"]
            for col, v in enumerate(vals):
                if v is not None:
                    it = QTableWidgetItem(v)
                    self.table.setItem(r, col, it)
            combo = QComboBox()
            combo.addItem(NONE, "")
            for key, label in PLACEMENTS.items():
                combo.addItem(label, key)
            self.table.setCellWidget(r, 5, combo)
            self._combos.append(combo)

    def assign(self, row: int, placement: str) -> None:
        """Pick a placement for a row (as the operator does with the combo box)."""
        combo = self._combos[row]
        combo.setCurrentIndex(max(0, combo.findData(placement)))

    def assignments(self) -> dict[str, str]:
        """placement → address of the rows with a placement."""
        out: dict[str, str] = {}
        for e, combo in zip(self.entries, self._combos):
            if combo.currentData():
                out[combo.currentData()] = e.address
        return out

    def connect_assigned(self) -> bool:
        sensors = self.assignments()
        if not sensors:
            self.sub.setText("Assign a placement to at least one sensor first.")
            return False
        rate = 200.0 if self.rate.currentIndex() == 1 else 100.0
        src = DemoPatient(sensors, rate, speed=self.demo_speed())
        self.engine.connect_source(src)
        return True

    def drop_selected(self) -> None:
        src = self.engine.source
        rows = {i.row() for i in self.table.selectedIndexes()}
        if not isinstance(src, DemoPatient) or not rows:
            return
        addr = self.entries[min(rows)].address
        for sid, a in src.sensors.items():
            if a == addr:
                src.drop(sid, 3.0)

    def refresh(self) -> None:
        st_by_addr = {st.address: (sid, st) for sid, st in self.engine.bus.status.items()} if self.engine.connected else {}
        for r, e in enumerate(self.entries):
            sid_st = st_by_addr.get(e.address)
            if sid_st is None:
                vals = {6: ("available", COLORS["muted"]), 7: ("–", None), 8: ("–", None)}
            else:
                sid, st = sid_st
                rate = self.engine.achieved_rate_hz.get(sid)
                status = ("connected", COLORS["ok"]) if st.connected else (st.message or "disconnected", COLORS["bad"])
                vals = {3: (_pct(st.battery_pct), None), 4: (_dbm(st.rssi_dbm), None), 6: status,
                        7: ("–" if rate is None else f"{rate:.0f} Hz", None),
                        8: (f"{st.loss_pct:.1f} %", COLORS["bad"] if st.loss_pct > 1 else None)}
            for col, (text, color) in vals.items():
                it = self.table.item(r, col)
                if it is None:
                    it = QTableWidgetItem()
                    self.table.setItem(r, col, it)
                if it.text() != text:
                    it.setText(text)
                if color:
                    it.setForeground(_brush(color))


def _pct(v: Any) -> str:
    return "–" if v is None else f"{v:.0f} %"


def _dbm(v: Any) -> str:
    return "–" if v is None else f"{v:.0f} dBm"


def _brush(color: str) -> Any:
    from PySide6.QtGui import QBrush, QColor

    return QBrush(QColor(color))
