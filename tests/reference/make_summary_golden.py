#!/usr/bin/env python3
"""Writes tests/graph/golden/small_summary.txt: the summary Keras 2.4 prints for the small model
built in tests/models/test_summary.cpp. The rows (names, shapes, counts, connections) are written
out by hand from Keras's rules; the formatting follows print_row of tf.keras 2.4
(utils/layer_utils.py), with trailing spaces stripped (resnet.cpp does not print them)."""
import os

LINE = 98
POS = [int(LINE * p) for p in (0.33, 0.55, 0.67, 1.0)]


def print_row(fields, positions):
    line = ''
    for i, field in enumerate(fields):
        if i > 0:
            line = line[:-1] + ' '
        line += str(field)
        line = line[:positions[i]]
        line += ' ' * (positions[i] - len(line))
    return line.rstrip() + '\n'


# name (class), output shape, params, connections; layer order is Keras's depth order.
rows = [
    ('input_1 (InputLayer)', '[(None, 8, 8, 3)]', 0, []),
    ('conv2d (Conv2D)', '(None, 8, 8, 4)', 3 * 3 * 3 * 4 + 4, ['input_1[0][0]']),
    ('batch_normalization (BatchNormalization)', '(None, 8, 8, 4)', 16, ['conv2d[0][0]']),
    ('conv2d_1 (Conv2D)', '(None, 8, 8, 4)', 3 * 4 + 4, ['input_1[0][0]']),
    ('add (Add)', '(None, 8, 8, 4)', 0, ['batch_normalization[0][0]', 'conv2d_1[0][0]']),
    ('activation (Activation)', '(None, 8, 8, 4)', 0, ['add[0][0]']),
    ('global_average_pooling2d (GlobalAveragePooling2D)', '(None, 4)', 0, ['activation[0][0]']),
    ('dense (Dense)', '(None, 3)', 4 * 3 + 3, ['global_average_pooling2d[0][0]']),
]
out = 'Model: "small"\n' + '_' * LINE + '\n'
out += print_row(['Layer (type)', 'Output Shape', 'Param #', 'Connected to'], POS)
out += '=' * LINE + '\n'
for i, (name, shape, params, conns) in enumerate(rows):
    out += print_row([name, shape, params, conns[0] if conns else ''], POS)
    for c in conns[1:]:
        out += print_row(['', '', '', c], POS)
    out += ('=' if i == len(rows) - 1 else '_') * LINE + '\n'
total = sum(r[2] for r in rows)
non_trainable = 8  # moving mean and variance of batch_normalization
out += 'Total params: {:,}\n'.format(total)
out += 'Trainable params: {:,}\n'.format(total - non_trainable)
out += 'Non-trainable params: {:,}\n'.format(non_trainable)
out += '_' * LINE + '\n'
path = os.path.join(os.path.dirname(__file__), '..', 'models', 'golden', 'small_summary.txt')
with open(path, 'w') as f:
    f.write(out)
print(out, end='')
