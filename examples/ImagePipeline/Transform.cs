namespace ImagePipeline;

/// <summary>Height, width and channels of one image stored row-major, channels interleaved.</summary>
public readonly record struct ImageShape(int Height, int Width, int Channels)
{
    public int Bytes => Height * Width * Channels;
}

/// <summary>What the reduction needs of one image.</summary>
public record struct ImageStats(double Mean, double EdgeFraction, byte MaxEdge);

public static class Synthetic
{
    /// <summary>Gradients, discs and noise: enough structure for edges to find.</summary>
    public static void Draw(Span<byte> image, ImageShape shape, int seed)
    {
        var random = new Random(seed);
        var discs = Enumerable.Range(0, 6).Select(_ => (X: random.Next(shape.Width), Y: random.Next(shape.Height), R: random.Next(10, shape.Width / 4), C: random.Next(256))).ToArray();
        for (var y = 0; y < shape.Height; y++)
        for (var x = 0; x < shape.Width; x++)
        {
            var value = (x + y + seed * 17) % 256;
            foreach (var d in discs)
                if ((x - d.X) * (x - d.X) + (y - d.Y) * (y - d.Y) < d.R * d.R) value = d.C;
            for (var c = 0; c < shape.Channels; c++)
                image[(y * shape.Width + x) * shape.Channels + c] = (byte)Math.Clamp(value + c * 20 + random.Next(-8, 9), 0, 255);
        }
    }
}

/// <summary>Blur (a few box passes, so that each image costs real CPU) then Sobel edges on the luminance.</summary>
public static class Transform
{
    private const int BlurPasses = 4;

    public static ImageStats Run(ReadOnlySpan<byte> image, Span<byte> result, ImageShape shape)
    {
        int h = shape.Height, w = shape.Width, ch = shape.Channels;
        var gray = new float[h * w];
        double sum = 0;
        for (var i = 0; i < h * w; i++)
        {
            float l = ch >= 3 ? 0.299f * image[i * ch] + 0.587f * image[i * ch + 1] + 0.114f * image[i * ch + 2] : image[i * ch];
            gray[i] = l;
            sum += l;
        }
        var scratch = new float[h * w];
        for (var pass = 0; pass < BlurPasses; pass++)
        {
            for (var y = 0; y < h; y++)
            for (var x = 0; x < w; x++)
            {
                float acc = 0;
                for (var dy = -2; dy <= 2; dy++)
                for (var dx = -2; dx <= 2; dx++)
                    acc += gray[Math.Clamp(y + dy, 0, h - 1) * w + Math.Clamp(x + dx, 0, w - 1)];
                scratch[y * w + x] = acc / 25f;
            }
            (gray, scratch) = (scratch, gray);
        }
        var edges = 0;
        byte strongest = 0;
        for (var y = 0; y < h; y++)
        for (var x = 0; x < w; x++)
        {
            float At(int yy, int xx) => gray[Math.Clamp(yy, 0, h - 1) * w + Math.Clamp(xx, 0, w - 1)];
            var gx = At(y - 1, x + 1) + 2 * At(y, x + 1) + At(y + 1, x + 1) - At(y - 1, x - 1) - 2 * At(y, x - 1) - At(y + 1, x - 1);
            var gy = At(y + 1, x - 1) + 2 * At(y + 1, x) + At(y + 1, x + 1) - At(y - 1, x - 1) - 2 * At(y - 1, x) - At(y - 1, x + 1);
            var magnitude = (byte)Math.Min(255, MathF.Sqrt(gx * gx + gy * gy));
            if (magnitude > 32) edges++;
            if (magnitude > strongest) strongest = magnitude;
            for (var c = 0; c < ch; c++) result[(y * w + x) * ch + c] = magnitude;
        }
        return new ImageStats(sum / (h * w), (double)edges / (h * w), strongest);
    }
}
