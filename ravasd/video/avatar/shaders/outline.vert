#version 330
// MToon outline: the back faces of the mesh pushed out along the normals (an "inverted hull"),
// drawn with front faces culled. World mode: width in metres; screen mode: a fraction of the frame
// height, constant however far the avatar is. Morph targets as in avatar_morph.vert when u_targets > 0.
uniform mat4 u_mvp;
uniform mat4 u_model;
uniform int u_mode;  // 1 world, 2 screen
uniform float u_width;
uniform float u_aspect;  // width / height of the frame
uniform sampler2D u_deltas;
uniform float u_weights[128];
uniform int u_targets;
uniform int u_vertices;
in vec3 in_pos;
in vec3 in_nrm;
void main() {
    vec3 p = in_pos;
    for (int t = 0; t < u_targets; ++t) {
        float w = u_weights[t];
        if (w != 0.0) {
            int idx = t * u_vertices + gl_VertexID;
            p += w * texelFetch(u_deltas, ivec2(idx % 4096, idx / 4096), 0).xyz;
        }
    }
    vec3 n = normalize(in_nrm);
    if (u_mode == 1) {
        gl_Position = u_mvp * vec4(p + n * u_width, 1.0);
    } else {
        vec4 c = u_mvp * vec4(p, 1.0);
        vec4 cn = u_mvp * vec4(p + n * 0.01, 1.0);
        vec2 d = cn.xy / cn.w - c.xy / c.w;
        float len = length(d * vec2(u_aspect, 1.0));
        if (len > 1e-6) d = d / len;
        c.xy += d * vec2(1.0 / u_aspect, 1.0) * u_width * 2.0 * c.w;
        gl_Position = c;
    }
}
