// The S/5 waveform channels the driver offers, shared by the driver and its simulator.

/**
 * Waveform channels whose sampling rate, scale and unit two public sources agree on:
 * [P] pycollect @ c6cfdc1d pycollect/measures.py WAVEFORMS ('samps', 'shift', 'unit');
 * [V] VSCapture VSCaptureWave DSerialPort.cs GetWaveUnitShift and RequestMultipleWaveTransfer's note
 *     ("Sample rate for ECG is 300, INVP 100, PLETH 100, respiratory 25 each").
 * value = sample × scale, in `unit` (UCUM). Where the two disagree on the scale (ECG: [P] 1 µV,
 * [V] 0.01; N2O, FLOW) the channel is sent as raw counts: unit "{raw}", scale 1. Types neither
 * describes the same way (O2, EEG, VOL, BIS ...) are not offered.
 */
export const DATEX_WAVES: Readonly<Record<string, { fs: number; unit: string; scale: number }>> = {
  ECG1: { fs: 300, unit: "{raw}", scale: 1 },
  ECG2: { fs: 300, unit: "{raw}", scale: 1 },
  ECG3: { fs: 300, unit: "{raw}", scale: 1 },
  INVP1: { fs: 100, unit: "mm[Hg]", scale: 0.01 },
  INVP2: { fs: 100, unit: "mm[Hg]", scale: 0.01 },
  INVP3: { fs: 100, unit: "mm[Hg]", scale: 0.01 },
  INVP4: { fs: 100, unit: "mm[Hg]", scale: 0.01 },
  INVP5: { fs: 100, unit: "mm[Hg]", scale: 0.01 },
  INVP6: { fs: 100, unit: "mm[Hg]", scale: 0.01 },
  PLETH: { fs: 100, unit: "%", scale: 0.01 },
  CO2: { fs: 25, unit: "%", scale: 0.01 },
  N2O: { fs: 25, unit: "{raw}", scale: 1 },
  AA: { fs: 25, unit: "%", scale: 0.01 },
  AWP: { fs: 25, unit: "cm[H2O]", scale: 0.1 },
  FLOW: { fs: 25, unit: "{raw}", scale: 1 },
  RESP: { fs: 25, unit: "Ohm", scale: 0.01 },
  ENT_100: { fs: 100, unit: "uV", scale: 0.1 },
};
