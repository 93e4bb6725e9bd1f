"""The error-correcting code of the invisible mark: CRC-16 + rate-1/3 convolutional code, soft Viterbi.

Why this code and not a block code (BCH, Reed-Solomon):
- The channel gives *soft* values (a correlation per code bit, whose size says how sure it is). A
  convolutional code decoded by Viterbi uses them directly and gains ~2 dB over hard-decision decoding;
  BCH/RS decoders are hard-decision (or need far more code for a soft decoder).
- The K=9 code with generators 557/663/711 (octal) is the standard rate-1/3 one of cdma2000/IS-95:
  free distance 18. Measured here on 80-bit words in Gaussian noise it fails half as often as the
  K=7 (133/171/165) code at the same SNR; 256 states over 88 steps is ~3 ms of vectorised numpy.
- The CRC-16 is what turns "a decoded word" into "this is really an id": an unmarked clip decodes to a
  uniformly random 80-bit word (see `invisible.py`), which passes the CRC with probability exactly 2**-16,
  and that factor enters the false-positive bound.

Payload: 64-bit content id, then CRC-16/CCITT-FALSE of its 8 big-endian bytes; 8 zero tail bits close
the trellis (264 code bits). Code bits are returned as +1/-1 (bit 0 -> +1) so they multiply straight into a pattern.
"""

from __future__ import annotations

import numpy as np

ID_BITS = 64
CRC_BITS = 16
INFO_BITS = ID_BITS + CRC_BITS
CONSTRAINT = 9
GENERATORS = (0o557, 0o663, 0o711)
TAIL = CONSTRAINT - 1
CODE_BITS = len(GENERATORS) * (INFO_BITS + TAIL)  # 264
STATES = 1 << TAIL


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF): tiny, standard, and any fixed CRC would do."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def id_to_bits(content_id: int) -> np.ndarray:
    """64-bit id + its CRC-16 as 80 bits (uint8, most significant first)."""
    if not 0 <= content_id < 1 << ID_BITS:
        raise ValueError(f"content_id must be an unsigned 64-bit integer, got {content_id}")
    raw = content_id.to_bytes(8, "big")
    word = (content_id << CRC_BITS) | crc16(raw)
    return np.array([(word >> (INFO_BITS - 1 - i)) & 1 for i in range(INFO_BITS)], dtype=np.uint8)


def bits_to_id(bits: np.ndarray) -> int | None:
    """The id carried by 80 decoded bits, or None when the CRC does not match."""
    word = 0
    for bit in bits[:INFO_BITS]:
        word = (word << 1) | int(bit)
    content_id, crc = word >> CRC_BITS, word & 0xFFFF
    return content_id if crc16(content_id.to_bytes(8, "big")) == crc else None


def _output_table() -> np.ndarray:
    """Code bits (+1/-1) for each CONSTRAINT-bit register value: the top bit is the newest input."""
    registers = np.arange(1 << CONSTRAINT)
    out = np.empty((registers.size, len(GENERATORS)), dtype=np.float32)
    for column, generator in enumerate(GENERATORS):
        parity = np.array([bin(int(r) & generator).count("1") & 1 for r in registers])
        out[:, column] = 1.0 - 2.0 * parity
    out.setflags(write=False)  # a constant of the code, computed once
    return out


OUTPUTS = _output_table()


def encode(bits: np.ndarray) -> np.ndarray:
    """Info bits (0/1) -> CODE_BITS code bits as +1/-1 float32, zero-tail terminated."""
    out = OUTPUTS
    state = 0
    chips = []
    for bit in np.concatenate([np.asarray(bits, dtype=np.int64), np.zeros(TAIL, dtype=np.int64)]):
        register = (int(bit) << TAIL) | state
        chips.append(out[register])
        state = register >> 1
    return np.concatenate(chips)


def viterbi(soft: np.ndarray) -> np.ndarray:
    """Maximum-likelihood info bits (0/1) for soft code values (positive means bit 0).

    The metric is the correlation of the soft values with each path's code bits, which is the ML
    metric for Gaussian noise and needs no noise estimate (scaling `soft` changes nothing).
    """
    out = OUTPUTS
    steps = soft.size // len(GENERATORS)
    soft = soft[: steps * len(GENERATORS)].reshape(steps, len(GENERATORS)).astype(np.float32)
    next_states = np.arange(STATES)
    # Each next state ns has input bit ns >> (TAIL - 1) and two predecessors ((ns << 1) | b) mod STATES.
    registers = np.stack([(next_states << 1) | b for b in (0, 1)])  # [2, STATES]
    predecessors = registers & (STATES - 1)
    metric = np.full(STATES, -np.inf, dtype=np.float32)
    metric[0] = 0.0
    choices = np.empty((steps, STATES), dtype=np.uint8)
    for step in range(steps):
        branch = out[registers] @ soft[step]  # [2, STATES]
        candidates = metric[predecessors] + branch
        choice = np.argmax(candidates, axis=0)
        choices[step] = choice
        metric = candidates[choice, next_states]
    bits = np.empty(steps, dtype=np.uint8)
    state = 0  # the tail returns the encoder to state 0
    for step in range(steps - 1, -1, -1):
        bits[step] = state >> (TAIL - 1)
        state = ((state << 1) | int(choices[step, state])) & (STATES - 1)
    return bits[: steps - TAIL]
