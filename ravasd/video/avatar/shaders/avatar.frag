#version 330
// Colours in linear space, ~sRGB encoded at the end. Written for software rasterisers too: few
// transcendental functions per pixel. Two models, compiled as two programs (MTOON defined or not:
// llvmpipe pays for both sides of a branch, even on a uniform):
//  - plain (glTF base colour): soft key + fill + rim + ambient, a little specular;
//  - MToon (VRM's toon shading; the bundled avatars use it too): lit/shade colours split by
//    linearstep(-1 + toony, 1 - toony, N.L + shift), parametric rim, MatCap, emissive.
uniform vec4 u_color;
uniform sampler2D u_tex;
uniform bool u_has_tex;
uniform vec3 u_eye;
uniform float u_rough;
uniform float u_shift;
uniform float u_toony;
uniform vec3 u_rim;
uniform float u_rim_power;
uniform float u_rim_lift;
uniform float u_rim_mix;
uniform float u_alpha_cutoff;  // < 0: no alpha test (OPAQUE/BLEND)
uniform sampler2D u_shade_tex;
uniform bool u_has_shade_tex;
uniform sampler2D u_matcap;
uniform bool u_has_matcap;
uniform vec3 u_matcap_factor;
uniform vec3 u_emissive;
uniform mat3 u_view_rot;  // world → view rotation (MatCap looks up the view-space normal)
in vec3 v_nrm;
in vec3 v_world;
in vec2 v_uv;
in vec4 v_color;
in vec3 v_shade;
out vec4 f_color;
const vec3 KEY = vec3(-0.4, 0.6, 0.7) / 1.0100;   // normalised
const vec3 FILL = vec3(0.6, 0.1, 0.5) / 0.7874;
void main() {
    vec4 base = u_color * v_color;
    if (u_has_tex) base *= texture(u_tex, v_uv);
    if (u_alpha_cutoff >= 0.0 && base.a < u_alpha_cutoff) discard;
    vec3 n = normalize(v_nrm);
    vec3 v = normalize(u_eye - v_world);
    float nv = dot(n, v);
    if (nv < 0.0) { n = -n; nv = -nv; }  // two-sided: thin parts seen from behind
    vec3 c;
#ifdef MTOON
    {
        float lit = dot(n, KEY) + u_shift;
        float lo = -1.0 + u_toony, hi = 1.0 - u_toony;
        float t = hi > lo + 1e-4 ? clamp((lit - lo) / (hi - lo), 0.0, 1.0) : step(lo, lit);
        vec3 shade = v_shade;
        if (u_has_shade_tex) shade *= texture(u_shade_tex, v_uv).rgb;
        vec3 light = vec3(0.98, 0.96, 0.93);  // the key light's colour (warm white)
        c = mix(shade, base.rgb, t) * light;
        c += base.rgb * 0.12 * max(dot(n, FILL), 0.0);  // a soft fill keeps shadows from going flat
        float r = clamp(1.0 - nv + u_rim_lift, 0.0, 1.0);
        float rim = u_rim_power > 0.0 ? pow(r, u_rim_power) : 1.0;
        c += u_rim * rim * mix(vec3(1.0), light * mix(0.5, 1.0, t), u_rim_mix);
        if (u_has_matcap) {
            vec3 vn = normalize(u_view_rot * n);
            c += u_matcap_factor * texture(u_matcap, vn.xy * vec2(0.5, -0.5) + 0.5).rgb;
        }
    }
#else
    {
        float diff = max(dot(n, KEY), 0.0) * 0.75 + max(dot(n, FILL), 0.0) * 0.25;
        float r1 = 1.0 - nv;
        float rim = r1 * r1 * r1 * 0.25;
        vec3 h = normalize(KEY + v);
        float s = max(dot(n, h), 0.0);
        s *= s; s *= s; s *= s; s *= s;  // ^16
        float spec = s * (1.0 - u_rough) * 0.5;
        c = base.rgb * (0.38 + 0.72 * diff) + vec3(rim + spec);
    }
#endif
    c += u_emissive;
    f_color = vec4(sqrt(clamp(c, 0.0, 1.0)), base.a);  // ~sRGB encode (gamma 2)
}
