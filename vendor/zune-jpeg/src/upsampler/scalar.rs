/*
 * Copyright (c) 2023.
 *
 * This software is free software;
 *
 * You can redistribute it or modify it under terms of the MIT, Apache License or Zlib license
 */

//! libjpeg-turbo's fancy upsampling filters (`jdsample.c`), bias for bias.
//!
//! Rows are `width_stride` samples long; the caller replicates a row's last
//! real sample into its padding (`worker::upsample`), so that the general
//! formula at the last real column equals libjpeg's special case there.

/// h2v1: `out[2i] = (3 in[i] + in[i-1] + 1) >> 2`,
/// `out[2i+1] = (3 in[i] + in[i+1] + 2) >> 2`, edges replicated.
pub fn upsample_horizontal(
    input: &[i16], _ref: &[i16], _in_near: &[i16], _scratch: &mut [i16], output: &mut [i16]
) {
    assert_eq!(
        input.len() * 2,
        output.len(),
        "Input length is not half the size of the output length"
    );
    let n = input.len();
    if n < 2 {
        output.iter_mut().for_each(|o| *o = input.first().copied().unwrap_or(0));
        return;
    }
    output[0] = input[0];
    output[1] = (input[0] * 3 + input[1] + 2) >> 2;
    // Samples are 0..=255, so every sum fits in i16; written as zips of
    // three shifted slices so that the compiler vectorizes it.
    let body = output[2..2 * n - 2].chunks_exact_mut(2);
    for (((o, &prev), &x), &next) in body.zip(&input[..n - 2]).zip(&input[1..n - 1]).zip(&input[2..]) {
        let near = 3 * x;
        o[0] = (near + prev + 1) >> 2;
        o[1] = (near + next + 2) >> 2;
    }
    output[2 * n - 2] = (input[n - 1] * 3 + input[n - 2] + 1) >> 2;
    output[2 * n - 1] = input[n - 1];
}

/// h1v2: the upper output row `(3 in + above + 1) >> 2`, the lower
/// `(3 in + below + 2) >> 2`.
pub fn upsample_vertical(
    input: &[i16], in_near: &[i16], in_far: &[i16], _scratch_space: &mut [i16], output: &mut [i16]
) {
    assert_eq!(input.len() * 2, output.len());
    assert_eq!(in_near.len(), input.len());
    assert_eq!(in_far.len(), input.len());

    let (out_top, out_bottom) = output.split_at_mut(input.len());
    for ((x, far), o) in input.iter().zip(in_near).zip(out_top) {
        *o = (3 * x + far + 1) >> 2;
    }
    for ((x, far), o) in input.iter().zip(in_far).zip(out_bottom) {
        *o = (3 * x + far + 2) >> 2;
    }
}

/// h2v2: column sums `c = 3 in + other row`, then
/// `out[2i] = (3 c[i] + c[i-1] + 8) >> 4`, `out[2i+1] = (3 c[i] + c[i+1] + 7) >> 4`,
/// for the upper output row with the row above, the lower with the row below.
pub fn upsample_hv(
    input: &[i16], in_near: &[i16], in_far: &[i16], scratch_space: &mut [i16], output: &mut [i16]
) {
    let n = input.len();
    assert_eq!(n * 4, output.len());
    assert_eq!(in_near.len(), n);
    assert_eq!(in_far.len(), n);
    assert!(scratch_space.len() >= n);
    let (top, bottom) = output.split_at_mut(n * 2);
    let c = &mut scratch_space[..n];
    for (other, out) in [(in_near, top), (in_far, bottom)] {
        // At most 4 * 255 = 1020, and 4 * 1020 + 8 below: i16 holds both.
        for ((c, &x), &y) in c.iter_mut().zip(input).zip(other) {
            *c = 3 * x + y;
        }
        if n < 2 {
            out.iter_mut().for_each(|o| *o = (c[0] * 4 + 8) >> 4);
            continue;
        }
        out[0] = (c[0] * 4 + 8) >> 4;
        out[1] = (c[0] * 3 + c[1] + 7) >> 4;
        let body = out[2..2 * n - 2].chunks_exact_mut(2);
        for (((o, &prev), &x), &next) in body.zip(&c[..n - 2]).zip(&c[1..n - 1]).zip(&c[2..]) {
            let near = 3 * x;
            o[0] = (near + prev + 8) >> 4;
            o[1] = (near + next + 7) >> 4;
        }
        out[2 * n - 2] = (c[n - 1] * 3 + c[n - 2] + 8) >> 4;
        out[2 * n - 1] = (c[n - 1] * 4 + 7) >> 4;
    }
}

pub fn upsample_generic(
    input: &[i16], _in_near: &[i16], _in_far: &[i16], _scratch_space: &mut [i16],
    output: &mut [i16]
) {
    // use nearest sample
    let difference = output.len() / input.len();
    if difference > 0 {
        // nearest neighbour
        for (input, chunk_output) in input.iter().zip(output.chunks_exact_mut(difference)) {
            chunk_output.iter_mut().for_each(|x| *x = *input);
        }
    }
}
